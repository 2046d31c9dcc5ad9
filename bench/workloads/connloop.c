/* connloop N: N TCP connections to a listener of our own on 127.0.0.1:
 * socket, connect, accept, close. The client resets (linger 0) so that
 * no TIME_WAIT sockets pile up and exhaust the ephemeral ports. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: connloop N\n");
		return 2;
	}
	long n = atol(argv[1]);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
		perror("listener");
		return 1;
	}
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	for (long i = 0; i < n; i++) {
		int cfd = socket(AF_INET, SOCK_STREAM, 0);
		if (cfd < 0 || connect(cfd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("connect");
			return 1;
		}
		int afd = accept(lfd, NULL, NULL);
		if (afd < 0) {
			perror("accept");
			return 1;
		}
		setsockopt(cfd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(cfd);
		close(afd);
	}
	return 0;
}
