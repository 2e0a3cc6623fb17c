// An in-process HTTP/1.1 (optionally TLS) server on 127.0.0.1 with a port
// chosen by the kernel, standing in for a remote_write receiver in the
// forward tests: it records every request and answers from a script.
#ifndef PROMRELAY_TESTS_FORWARD_TEST_SERVER_H_
#define PROMRELAY_TESTS_FORWARD_TEST_SERVER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace promrelay::forward::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int connection = 0;  // 1-based id of the TCP connection it came on
  absl::Time received;
};

struct Reply {
  Reply() = default;
  Reply(int status_code,  // NOLINT: Reply{500} reads well in scripts
        std::vector<std::pair<std::string, std::string>> extra_headers = {},
        std::string response_body = {})
      : status(status_code),
        headers(std::move(extra_headers)),
        body(std::move(response_body)) {}

  int status = 204;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // Connection: close after the response
  // Closes the connection after the response although it said keep-alive,
  // as a server whose idle timeout fired would.
  bool silent_close = false;
  absl::Duration delay = absl::ZeroDuration();  // wait before answering
};

class TestServer {
 public:
  struct Options {
    bool tls = false;
    std::string cert_file, key_file;
    // When set, a client certificate signed by this CA is required.
    std::string client_ca_file;
  };
  explicit TestServer(Options options);
  TestServer() : TestServer(Options{}) {}
  ~TestServer();

  int port() const { return port_; }
  // http(s)://127.0.0.1:<port><path>
  std::string Url(const std::string& path = "/api/v1/write") const;

  // Replies are used in order; once the script is empty every request gets
  // `default_reply` (204 unless set).
  void Script(std::vector<Reply> replies);
  void SetDefault(Reply reply);
  // Decides every reply not taken from the script (replaces the default).
  void SetHandler(std::function<Reply(const RecordedRequest&)> handler);

  std::vector<RecordedRequest> Requests() const;
  size_t RequestCount() const;
  int Connections() const;
  int HandshakeFailures() const;
  // Waits until at least `n` requests were seen; false on timeout (the
  // timeout only bounds a hang, tests never assert on it).
  bool WaitForRequests(size_t n,
                       absl::Duration timeout = absl::Seconds(30)) const;
  bool WaitForHandshakeFailures(
      int n, absl::Duration timeout = absl::Seconds(30)) const;

  // Internal, used by the sessions.
  Reply OnRequest(RecordedRequest req);
  void OnHandshakeFailure();
  int NextConnectionId();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  Options options_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<RecordedRequest> requests_;
  std::deque<Reply> script_;
  Reply default_reply_;
  std::function<Reply(const RecordedRequest&)> handler_;
  int connections_ = 0;
  int handshake_failures_ = 0;
};

// A throwaway PKI made with the openssl CLI in a temp dir: a CA, a server
// certificate for 127.0.0.1 and localhost signed by it, a client
// certificate signed by it, and an unrelated CA. Removed on destruction.
struct TestPki {
  TestPki();
  ~TestPki();
  std::string dir;
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert;
  bool ok = false;
};

}  // namespace promrelay::forward::testing

#endif  // PROMRELAY_TESTS_FORWARD_TEST_SERVER_H_
