/* The floor of the measuring set-up: a single-threaded epoll HTTP/1.1 server that answers every request
 * with the same bytes read from a file (a captured response, headers and body). It parses nothing but
 * the blank line that ends each request head, allocates nothing per request, and makes one recv and one
 * send per request: what is left is the kernel's loopback TCP path and the load tool. bench/floor.sh
 * compares it with Latchkey on the same response.
 *
 *   cc -O2 -o floor bench/floor.c && taskset -c 0 ./floor RESPONSE_FILE PORT
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: floor RESPONSE_FILE PORT\n"); return 2; }
  static char response[65536];
  FILE *file = fopen(argv[1], "rb");
  if (!file) { perror(argv[1]); return 1; }
  size_t response_len = fread(response, 1, sizeof response, file);
  fclose(file);

  int one = 1, listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1024)) {
    perror("listen");
    return 1;
  }
  int poller = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener}, ready[256];
  epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);

  /* The last bytes seen on each connection, so a request head split across reads is still counted. */
  static unsigned int tail[65536];
  char buffer[16384];
  for (;;) {
    int count = epoll_wait(poller, ready, 256, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int connection;
        while ((connection = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (connection >= 65536) { close(connection); continue; }
          setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          tail[connection] = 0;
          struct epoll_event readable = {.events = EPOLLIN, .data.fd = connection};
          epoll_ctl(poller, EPOLL_CTL_ADD, connection, &readable);
        }
        continue;
      }
      ssize_t received = recv(fd, buffer, sizeof buffer, 0);
      if (received <= 0) { close(fd); continue; }
      unsigned int last = tail[fd];
      for (ssize_t j = 0; j < received; j++) {
        last = (last << 8) | (unsigned char)buffer[j];
        if (last == 0x0d0a0d0a) send(fd, response, response_len, MSG_NOSIGNAL);  /* "\r\n\r\n" */
      }
      tail[fd] = last;
    }
  }
}
