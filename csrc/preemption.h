/*
 * Whether a team's threads lost their cores while they worked.
 *
 * A team is as fast as its slowest member: when another process (or more
 * threads than cores) keeps a core busy, a member that the scheduler takes
 * off its core stalls every member for a time slice, at each barrier and
 * at the end of the call, and two threads run far slower than one. Each
 * member counts its involuntary context switches (getrusage, one system
 * call of well under a microsecond) around its work; the caller turns the
 * total into a thread count for the next calls (fastlstm/_teams.py).
 */
#ifndef FASTLSTM_PREEMPTION_H
#define FASTLSTM_PREEMPTION_H

#include <sys/resource.h>

static inline long fastlstm_involuntary_switches(void)
{
#ifdef RUSAGE_THREAD
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) == 0)
        return usage.ru_nivcsw;
#endif
    return 0;
}

/* Add the calling thread's involuntary switches since `before` to `total`,
 * which the team's threads share. */
static inline void fastlstm_add_switches(long *total, long before)
{
    long now = fastlstm_involuntary_switches();
    if (now != before)
        __atomic_fetch_add(total, now - before, __ATOMIC_RELAXED);
}

#endif
