/* openloop PATH N: openat(PATH, O_RDONLY) + close, N times. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: openloop PATH N\n");
		return 2;
	}
	long n = atol(argv[2]);
	for (long i = 0; i < n; i++) {
		int fd = openat(AT_FDCWD, argv[1], O_RDONLY);
		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		close(fd);
	}
	return 0;
}
