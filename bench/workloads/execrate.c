/* execrate exec|fork|open RATE SECONDS WORKERS [PATH]: WORKERS processes
 * together do RATE operations per second (0: as fast as they can) for
 * SECONDS. "exec" starts /bin/true; "fork" starts children that only _exit;
 * "open" opens and closes PATH. Prints the number of operations done. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *open_path;

static int start_one(int do_exec)
{
	if (open_path) {
		int fd = open(open_path, O_RDONLY);
		return fd < 0 ? -1 : close(fd);
	}
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (do_exec)
			execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	int status;
	return waitpid(pid, &status, 0) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	int is_open = argc == 6 && !strcmp(argv[1], "open");
	if (!(argc == 5 && (!strcmp(argv[1], "exec") || !strcmp(argv[1], "fork"))) && !is_open) {
		fprintf(stderr, "usage: execrate exec|fork RATE SECONDS WORKERS | execrate open RATE SECONDS WORKERS PATH\n");
		return 2;
	}
	if (is_open)
		open_path = argv[5];
	int do_exec = !strcmp(argv[1], "exec");
	double rate = atof(argv[2]), secs = atof(argv[3]);
	int workers = atoi(argv[4]);
	if (workers < 1 || secs <= 0) {
		fprintf(stderr, "execrate: WORKERS >= 1 and SECONDS > 0\n");
		return 2;
	}
	/* Each worker's count lives in shared memory so the parent can add them up. */
	long *started = mmap(NULL, sizeof(long) * workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (started == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	double t0 = now(), per_worker = rate / workers;
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid)
			continue;
		for (;;) {
			double elapsed = now() - t0;
			if (elapsed >= secs)
				_exit(0);
			if (per_worker > 0 && started[w] >= per_worker * elapsed) {
				usleep(200);
				continue;
			}
			if (start_one(do_exec) < 0)
				_exit(1);
			started[w]++;
		}
	}
	int failed = 0, status;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	long total = 0;
	for (int w = 0; w < workers; w++)
		total += started[w];
	printf("%ld\n", total);
	return failed;
}
