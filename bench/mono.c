/* bench/mono.c: prints CLOCK_MONOTONIC in seconds with nanoseconds, the clock
 * bench/run.sh times each workload with (date +%s.%N would be wall time). */
#include <stdio.h>
#include <time.h>

int main(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		return 1;
	}
	printf("%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
	return 0;
}
