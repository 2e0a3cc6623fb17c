#include "bench/http_lite.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "bench/strutil.h"

namespace promrelay::bench {

bool ParseUrl(std::string_view text, Url* url, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) {
    *error = "only http:// URLs are supported";
    return false;
  }
  text.remove_prefix(kScheme.size());
  size_t slash = text.find('/');
  std::string_view hostport = text.substr(0, slash);
  url->path =
      slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    url->host = std::string(hostport);
    url->port = 80;
  } else {
    url->host = std::string(hostport.substr(0, colon));
    if (!absl::SimpleAtoi(AV(hostport.substr(colon + 1)), &url->port) ||
        url->port <= 0 || url->port > 65535) {
      *error = "bad port in URL";
      return false;
    }
  }
  if (url->host.empty()) {
    *error = "missing host in URL";
    return false;
  }
  return true;
}

static bool Resolve(const std::string& host, int port, sockaddr_storage* ss,
                    socklen_t* len) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) !=
      0)
    return false;
  std::memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

int Connect(const std::string& host, int port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!Resolve(host, port, &ss, &len)) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int Listen(const std::string& host, int port, int* bound_port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!Resolve(host, port, &ss, &len)) {
    errno = EADDRNOTAVAIL;
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd, 1024) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  sockaddr_storage got;
  socklen_t got_len = sizeof(got);
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len);
  if (bound_port) {
    *bound_port = got.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&got)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  }
  return fd;
}

bool WriteAll(int fd, std::string_view a, std::string_view b) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                  {const_cast<char*>(b.data()), b.size()}};
  int n_iov = b.empty() ? 1 : 2;
  iovec* cur = iov;
  while (n_iov > 0) {
    ssize_t n = writev(fd, cur, n_iov);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(n);
    while (n_iov > 0 && left >= cur->iov_len) {
      left -= cur->iov_len;
      ++cur;
      --n_iov;
    }
    if (n_iov > 0) {
      cur->iov_base = static_cast<char*>(cur->iov_base) + left;
      cur->iov_len -= left;
    }
  }
  return true;
}

std::string_view Message::Get(std::string_view name) const {
  for (const Header& h : headers)
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  return {};
}

Connection::~Connection() { Close(); }

void Connection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool Connection::Fill(std::string* error) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1 << 16) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  size_t old = buf_.size();
  buf_.resize(old + (1 << 16));
  for (;;) {
    ssize_t n = read(fd_, buf_.data() + old, 1 << 16);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      buf_.resize(old);
      if (n < 0) *error = std::string("read: ") + std::strerror(errno);
      return false;
    }
    buf_.resize(old + n);
    return true;
  }
}

bool Connection::ReadLine(std::string_view* line, std::string* error) {
  for (;;) {
    size_t nl = buf_.find("\r\n", pos_);
    if (nl != std::string::npos) {
      *line = std::string_view(buf_).substr(pos_, nl - pos_);
      pos_ = nl + 2;
      return true;
    }
    if (buf_.size() - pos_ > (1 << 16)) {
      *error = "line too long";
      return false;
    }
    if (!Fill(error)) {
      if (error->empty()) *error = "unexpected EOF";
      return false;
    }
  }
}

bool Connection::ReadExact(size_t n, std::string* out, std::string* error) {
  size_t have = std::min(n, buf_.size() - pos_);
  size_t start = out->size();
  out->resize(start + n);
  std::memcpy(out->data() + start, buf_.data() + pos_, have);
  pos_ += have;
  size_t got = have;
  while (got < n) {
    ssize_t r = read(fd_, out->data() + start + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      *error = r == 0 ? "unexpected EOF in body"
                      : std::string("read: ") + std::strerror(errno);
      return false;
    }
    got += r;
  }
  return true;
}

bool Connection::ReadRequest(Message* m, size_t max_body, std::string* error) {
  return ReadMessage(m, true, max_body, error);
}
bool Connection::ReadResponse(Message* m, size_t max_body, std::string* error) {
  return ReadMessage(m, false, max_body, error);
}

bool Connection::ReadMessage(Message* m, bool request, size_t max_body,
                             std::string* error) {
  error->clear();
  m->headers.clear();
  m->body.clear();
  m->status = 0;
  // Find the end of the head, reading more as needed.
  size_t end;
  for (;;) {
    end = buf_.find("\r\n\r\n", pos_);
    if (end != std::string::npos) break;
    if (buf_.size() - pos_ > (1 << 16)) {
      *error = "header too large";
      return false;
    }
    bool at_start = pos_ == buf_.size();
    if (!Fill(error)) {
      if (!at_start && error->empty()) *error = "unexpected EOF in header";
      return false;
    }
  }
  head_.assign(buf_, pos_, end + 2 - pos_);
  pos_ = end + 4;
  std::string_view head(head_);
  size_t eol = head.find("\r\n");
  std::string_view first = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  std::vector<std::string_view> parts;
  for (int i = 0; i < 2; ++i) {
    size_t sp = first.find(' ');
    if (sp == std::string_view::npos) break;
    parts.push_back(first.substr(0, sp));
    first.remove_prefix(sp + 1);
  }
  parts.push_back(first);
  if (parts.size() < 2) {
    *error = "malformed start line";
    return false;
  }
  if (request) {
    m->method = parts[0];
    m->target = parts[1];
    m->keep_alive = parts.size() < 3 || parts[2] != "HTTP/1.0";
  } else {
    if (!absl::SimpleAtoi(AV(parts[1]), &m->status)) {
      *error = "malformed status line";
      return false;
    }
    m->keep_alive = parts[0] != "HTTP/1.0";
  }
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    m->headers.push_back(
        {Trim(line.substr(0, colon)), Trim(line.substr(colon + 1))});
  }
  std::string_view conn = m->Get("Connection");
  if (EqualsIgnoreCase(conn, "close")) m->keep_alive = false;
  if (EqualsIgnoreCase(conn, "keep-alive")) m->keep_alive = true;

  if (ContainsIgnoreCase(m->Get("Transfer-Encoding"), "chunked")) {
    for (;;) {
      std::string_view line;
      if (!ReadLine(&line, error)) return false;
      uint64_t size = 0;
      std::string_view hex = line.substr(0, line.find(';'));
      if (!absl::SimpleHexAtoi(AV(Trim(hex)), &size)) {
        *error = "bad chunk size";
        return false;
      }
      if (m->body.size() + size > max_body) {
        *error = "body too large";
        return false;
      }
      if (size == 0) {
        // Trailers until the empty line.
        do {
          if (!ReadLine(&line, error)) return false;
        } while (!line.empty());
        return true;
      }
      if (!ReadExact(size, &m->body, error)) return false;
      if (!ReadLine(&line, error)) return false;
    }
  }
  std::string_view cl = m->Get("Content-Length");
  if (cl.empty()) {
    // A response without a length (and not 204/304) runs to EOF; requests
    // without one have no body.
    if (!request && m->status != 204 && m->status != 304 && m->status >= 200) {
      while (Fill(error)) {
        if (buf_.size() - pos_ > max_body) {
          *error = "body too large";
          return false;
        }
      }
      m->body.assign(buf_, pos_);
      pos_ = buf_.size();
      m->keep_alive = false;
      error->clear();
    }
    return true;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(AV(cl), &n)) {
    *error = "bad Content-Length";
    return false;
  }
  if (n > max_body) {
    *error = "body too large";
    return false;
  }
  return ReadExact(n, &m->body, error);
}

}  // namespace promrelay::bench
