// A deliberately small HTTP/1.1 layer over blocking POSIX sockets for the
// benchmark tools: keep-alive requests and responses with Content-Length or
// chunked bodies. Enough for remote_write traffic on loopback, nothing more.
#ifndef PROMRELAY_BENCH_HTTP_LITE_H_
#define PROMRELAY_BENCH_HTTP_LITE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace promrelay::bench {

struct Url {
  std::string host;
  int port = 80;
  std::string path = "/";
};
// Parses http://host[:port][/path]. Returns false (and sets *error) otherwise.
bool ParseUrl(std::string_view text, Url* url, std::string* error);

// Connects with TCP_NODELAY; returns the fd or -1 (errno set).
int Connect(const std::string& host, int port);
// Binds and listens on host:port (port 0 = any free); returns the fd or -1.
int Listen(const std::string& host, int port, int* bound_port);

// Writes every byte of the buffers, retrying on EINTR / short writes.
bool WriteAll(int fd, std::string_view a, std::string_view b = {});

struct Header {
  std::string_view name;
  std::string_view value;
};

// One HTTP message head plus its body, as read from a connection.
struct Message {
  // Request: method, target. Response: status code in `status`.
  std::string_view method, target;
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;
  std::string_view Get(std::string_view name) const;  // case-insensitive
};

// Buffered reader of HTTP messages from one socket.
class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  // Reads the next request or response. Returns false on EOF or error, with
  // *error saying what (empty on a clean EOF between messages). `max_body`
  // bounds the body; a larger one is an error.
  bool ReadRequest(Message* m, size_t max_body, std::string* error);
  bool ReadResponse(Message* m, size_t max_body, std::string* error);
  void Close();

 private:
  bool ReadMessage(Message* m, bool request, size_t max_body,
                   std::string* error);
  bool Fill(std::string* error);  // reads more into buf_
  bool ReadLine(std::string_view* line, std::string* error);
  bool ReadExact(size_t n, std::string* out, std::string* error);

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  std::string head_;  // storage the Message views point into
};

}  // namespace promrelay::bench

#endif  // PROMRELAY_BENCH_HTTP_LITE_H_
