/*
 * How long a team's threads were off their cores while they worked.
 *
 * A team is as fast as its slowest member: when another process (or more
 * threads than cores) keeps a core busy, a member that the scheduler takes
 * off its core stalls every member for a time slice, at each barrier and
 * at the end of the call, and two threads run far slower than one. Each
 * member measures, around its work, the wall time that passed and the CPU
 * time it got (two clock reads each, the thread's CPU clock a system call
 * of well under a microsecond); the difference, summed over the team, is
 * the time the team lost. A brief preemption by a kernel thread loses
 * microseconds; a busy core loses milliseconds. The caller turns the total
 * into a thread count for the next calls (fastlstm/_teams.py).
 */
#ifndef FASTLSTM_PREEMPTION_H
#define FASTLSTM_PREEMPTION_H

#include <time.h>

typedef struct {
    long long wall_ns, cpu_ns;
} fastlstm_thread_clock;

static inline long long fastlstm_clock_ns(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static inline fastlstm_thread_clock fastlstm_thread_clock_now(void)
{
    fastlstm_thread_clock now;
    now.wall_ns = fastlstm_clock_ns(CLOCK_MONOTONIC);
    now.cpu_ns = fastlstm_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    return now;
}

/* Add the time the calling thread spent off its core since `start` to
 * `lost_ns`, which the team's threads share. */
static inline void fastlstm_add_lost_time(long long *lost_ns, fastlstm_thread_clock start)
{
    fastlstm_thread_clock now = fastlstm_thread_clock_now();
    long long lost = (now.wall_ns - start.wall_ns) - (now.cpu_ns - start.cpu_ns);
    if (lost > 0)
        __atomic_fetch_add(lost_ns, lost, __ATOMIC_RELAXED);
}

#endif
