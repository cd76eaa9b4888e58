/*
 * Ctrl-C during a long kernel call.
 *
 * Python runs its SIGINT handler (which raises KeyboardInterrupt) only when
 * the main thread executes Python code again, so a kernel that runs for
 * seconds without the GIL would hold the interrupt back until it returns.
 * Instead, the thread that released the GIL (OpenMP thread 0 of every team
 * the call starts) asks Python for pending signals at step boundaries, at
 * most every FASTLSTM_POLL_SECONDS of wall time, and only in calls made on
 * Python's main thread (the only thread whose signals Python handles). A
 * handler's exception is kept, the other threads see `stop` at their next
 * step or block and leave their loops, and the caller raises it once the
 * team has finished.
 *
 * Reading the clock costs about 20 ns, so it is read every
 * FASTLSTM_POLL_STEPS boundaries: at most a few percent of one step of the
 * smallest problems, and the largest steps still see a pending Ctrl-C
 * within about 0.1 s.
 */
#ifndef FASTLSTM_INTERRUPT_POLL_H
#define FASTLSTM_INTERRUPT_POLL_H

#include <Python.h>
#include <time.h>

#include "openmp_compat.h"

#define FASTLSTM_POLL_SECONDS 0.02
#define FASTLSTM_POLL_STEPS 8

typedef struct {
    int enabled;             /* this call runs on Python's main thread */
    volatile int stop;       /* a signal handler raised: every thread leaves */
    int countdown;           /* boundaries until the clock is read again */
    double next_poll;        /* CLOCK_MONOTONIC seconds */
    PyObject *type, *value, *traceback;  /* the handler's exception */
} fastlstm_interrupt;

static inline double fastlstm_monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Call with the GIL held, before the kernel releases it. */
static inline void fastlstm_interrupt_init(fastlstm_interrupt *it, int enabled)
{
    it->enabled = enabled;
    it->stop = 0;
    it->countdown = FASTLSTM_POLL_STEPS;
    it->next_poll = fastlstm_monotonic_seconds() + FASTLSTM_POLL_SECONDS;
    it->type = it->value = it->traceback = NULL;
}

/* Without the GIL, at a step or block boundary: whether to stop. Only
 * OpenMP thread 0 polls; the others read the flag it sets. */
static inline int fastlstm_interrupted(fastlstm_interrupt *it)
{
    PyGILState_STATE gil;
    double now;
    if (it->stop)
        return 1;
    if (!it->enabled || fastlstm_omp_thread_num() != 0 || --it->countdown > 0)
        return 0;
    it->countdown = FASTLSTM_POLL_STEPS;
    now = fastlstm_monotonic_seconds();
    if (now < it->next_poll)
        return 0;
    it->next_poll = now + FASTLSTM_POLL_SECONDS;
    gil = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) {
        PyErr_Fetch(&it->type, &it->value, &it->traceback);
        it->stop = 1;
    }
    PyGILState_Release(gil);
    return it->stop;
}

/* Whether the call stops, without polling (for a team's other members
 * after a barrier). */
static inline int fastlstm_interrupt_stopped(const fastlstm_interrupt *it)
{
    return it->stop;
}

/* With the GIL, after the team has finished: -1 with the handler's
 * exception set again if the call stopped, else 0. */
static inline int fastlstm_interrupt_reraise(fastlstm_interrupt *it)
{
    if (!it->stop)
        return 0;
    PyErr_Restore(it->type, it->value, it->traceback);
    it->type = it->value = it->traceback = NULL;
    return -1;
}

#endif
