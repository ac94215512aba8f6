/*
 * The compiled reference for reading photos (bench/threads.js builds it with
 * the machine's `cc`): what a careful native client spends to fetch the same
 * images imgjob fetches. One thread, epoll, N keep-alive HTTP/1.1
 * connections to one server, one request at a time per connection; each
 * body is read into one reused buffer and dropped, and the image's size is
 * read from its first bytes (JPEG SOFn or PNG IHDR). No retries: any
 * failure exits 1.
 *
 *   cclient <host> <port> <paths-file> [connections]
 *
 * `paths-file` holds one request path per line. Prints
 * {"images":…,"bytes":…,"ms":…,"perimeters":…} on stdout (ms from the first
 * connect to the last body).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192   /* response header bytes held */
#define PROBE_MAX 4096  /* body bytes held to read the size from */
#define READ_SIZE (256 * 1024)

enum phase { SENDING, HEAD, BODY };

struct conn {
  int fd;
  enum phase phase;
  long path;         /* index of the path in flight, or -1 */
  char req[1024];
  size_t req_len, req_sent;
  char head[HEAD_MAX];
  size_t head_len;
  unsigned char probe[PROBE_MAX];
  size_t probe_len;
  long long remaining; /* body bytes still to read */
};

static char **paths;
static long path_count, next_path, done_count;
static long long total_bytes, perimeter_sum;
static const char *host;
static struct sockaddr_in addr;
static int ep;
static unsigned char buf[READ_SIZE];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void fail(const char *what, const char *path) {
  fprintf(stderr, "cclient: %s: %s\n", path, what);
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long be32(const unsigned char *p) {
  return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Width and height from a JPEG's or PNG's first bytes; 0 when not found. */
static int image_size(const unsigned char *p, size_t n, unsigned long *w, unsigned long *h) {
  if (n >= 24 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
    *w = be32(p + 16);
    *h = be32(p + 20);
    return *w > 0 && *h > 0;
  }
  if (n < 4 || p[0] != 0xff || p[1] != 0xd8) return 0;
  size_t i = 2;
  while (i + 9 < n) {
    if (p[i] != 0xff) return 0;
    unsigned marker = p[i + 1];
    if (marker == 0xff) {
      i++;
      continue;
    }
    unsigned len = be16(p + i + 2);
    int sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      *h = be16(p + i + 5);
      *w = be16(p + i + 7);
      return *w > 0 && *h > 0;
    }
    i += 2 + len;
  }
  return 0;
}

static void watch(struct conn *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void open_conn(struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
    die("connect");
  watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
}

/* The next path on this connection, or close it when none is left. */
static void next_request(struct conn *c) {
  if (next_path >= path_count) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->path = -1;
    return;
  }
  c->path = next_path++;
  c->req_len = (size_t)snprintf(c->req, sizeof c->req,
                                "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cclient\r\n\r\n",
                                paths[c->path], host);
  c->req_sent = 0;
  c->phase = SENDING;
  c->head_len = 0;
  c->probe_len = 0;
}

static void send_more(struct conn *c) {
  while (c->req_sent < c->req_len) {
    ssize_t n = write(c->fd, c->req + c->req_sent, c->req_len - c->req_sent);
    if (n < 0) {
      if (errno == EAGAIN || errno == ENOTCONN) return;
      die("write");
    }
    c->req_sent += (size_t)n;
  }
  c->phase = HEAD;
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void body_done(struct conn *c) {
  unsigned long w, h;
  if (!image_size(c->probe, c->probe_len, &w, &h)) fail("no image size in its first bytes", paths[c->path]);
  perimeter_sum += 2 * (long long)(w + h);
  done_count++;
  next_request(c);
  if (c->fd >= 0) {
    watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    send_more(c);
  }
}

/* Body bytes: the first PROBE_MAX are held, the rest only counted. */
static void take_body(struct conn *c, const unsigned char *p, size_t n) {
  if (c->probe_len < PROBE_MAX) {
    size_t keep = n < PROBE_MAX - c->probe_len ? n : PROBE_MAX - c->probe_len;
    memcpy(c->probe + c->probe_len, p, keep);
    c->probe_len += keep;
  }
  c->remaining -= (long long)n;
  total_bytes += (long long)n;
}

static void take_head(struct conn *c, const unsigned char *p, size_t n) {
  size_t room = HEAD_MAX - 1 - c->head_len;
  size_t copy = n < room ? n : room;
  memcpy(c->head + c->head_len, p, copy);
  c->head_len += copy;
  c->head[c->head_len] = 0;
  char *end = strstr(c->head, "\r\n\r\n");
  if (!end) {
    if (c->head_len >= HEAD_MAX - 1) fail("response header too long", paths[c->path]);
    return;
  }
  if (strncmp(c->head, "HTTP/1.1 200", 12) != 0) fail("not 200", paths[c->path]);
  char *cl = strcasestr(c->head, "\r\ncontent-length:");
  if (!cl || cl > end) fail("no Content-Length", paths[c->path]);
  c->remaining = atoll(cl + 17);
  size_t header_bytes = (size_t)(end + 4 - c->head);
  c->phase = BODY;
  /* Body bytes that came with the head: from the held copy, then from `p`. */
  size_t held_body = c->head_len - header_bytes;
  if (held_body) take_body(c, (unsigned char *)c->head + header_bytes, held_body);
  if (n > copy) take_body(c, p + copy, n - copy);
}

static void on_readable(struct conn *c) {
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EAGAIN) return;
      die("read");
    }
    if (n == 0) fail("the server closed the connection", c->path >= 0 ? paths[c->path] : "-");
    if (c->phase == HEAD) take_head(c, buf, (size_t)n);
    else if (c->phase == BODY) take_body(c, buf, (size_t)n);
    else fail("bytes before the request was sent", paths[c->path]);
    if (c->phase == BODY && c->remaining <= 0) {
      if (c->remaining < 0) fail("more bytes than Content-Length", paths[c->path]);
      body_done(c);
      if (c->fd < 0) return;
    }
    if ((size_t)n < sizeof buf) return;
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: cclient <host> <port> <paths-file> [connections]\n");
    return 2;
  }
  host = argv[1];
  int port = atoi(argv[2]);
  int conns = argc > 4 ? atoi(argv[4]) : 64;
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) fail("not an IPv4 address", host);

  FILE *f = fopen(argv[3], "r");
  if (!f) die(argv[3]);
  size_t cap = 1024;
  paths = malloc(cap * sizeof *paths);
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if ((size_t)path_count == cap) paths = realloc(paths, (cap *= 2) * sizeof *paths);
    paths[path_count++] = strdup(line);
  }
  fclose(f);

  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  double started = now_ms();
  struct conn *all = calloc((size_t)conns, sizeof *all);
  for (int i = 0; i < conns && next_path < path_count; i++) {
    next_request(&all[i]);
    open_conn(&all[i]);
  }
  struct epoll_event events[256];
  while (done_count < path_count) {
    int ready = epoll_wait(ep, events, 256, 10000);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    if (ready == 0) fail("no progress for 10 s", "-");
    for (int i = 0; i < ready; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->fd < 0) continue;
      if (events[i].events & (EPOLLERR | EPOLLHUP) && c->phase == SENDING) fail("connect failed", paths[c->path]);
      if (c->phase == SENDING && (events[i].events & EPOLLOUT)) send_more(c);
      if (c->fd >= 0 && c->phase != SENDING && (events[i].events & (EPOLLIN | EPOLLHUP))) on_readable(c);
    }
  }
  double ms = now_ms() - started;
  printf("{\"images\":%ld,\"bytes\":%lld,\"ms\":%.1f,\"perimeters\":%lld}\n", done_count, total_bytes, ms,
         perimeter_sum);
  return 0;
}
