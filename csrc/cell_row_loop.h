/*
 * The loop every cell's row kernel runs over a row of n units.
 *
 * LOAD(ctx, j, single) reads a cell's operands at units [j, j + lanes) into
 * vectors (or unit j into every lane when single), MATH computes its outputs
 * in registers and STORE(ctx, j, out, single) writes them. A row of n >= lanes
 * units is covered by vectors at 0, lanes, ... and, when lanes does not
 * divide n, by the vector ending at unit n - 1: it overlaps the one before,
 * so it is computed before the loop overwrites any operand in place and
 * stored after it, and the units in the overlap get the same bits twice. A
 * row narrower than a vector runs unit by unit through the same vector
 * instructions. Every unit thus goes through the same instructions wherever
 * it lands, so a unit's result does not depend on where a slice of the row
 * starts (a team of threads may split a row).
 */
#ifndef FASTLSTM_CELL_ROW_LOOP_H
#define FASTLSTM_CELL_ROW_LOOP_H

#define FASTLSTM_ROW_LOOP(n, lanes, OUT_T, LOAD, MATH, STORE, ctx)              \
    do {                                                                       \
        if ((n) < (lanes)) {                                                   \
            for (ptrdiff_t j_ = 0; j_ < (n); ++j_)                             \
                STORE(ctx, j_, MATH(LOAD(ctx, j_, 1)), 1);                            \
        } else {                                                               \
            const ptrdiff_t last_ = (n) - (lanes);                             \
            const int overlap_ = (n) % (lanes) != 0;                           \
            OUT_T tail_;                                                       \
            if (overlap_)                                                      \
                tail_ = MATH(LOAD(ctx, last_, 0));                              \
            for (ptrdiff_t j_ = 0; j_ + (lanes) <= (n); j_ += (lanes))         \
                STORE(ctx, j_, MATH(LOAD(ctx, j_, 0)), 0);                            \
            if (overlap_)                                                      \
                STORE(ctx, last_, tail_, 0);                                    \
        }                                                                      \
    } while (0)

#endif
