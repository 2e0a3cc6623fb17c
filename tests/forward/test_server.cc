#include "tests/forward/test_server.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"

namespace promrelay::forward::testing {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  Session(TestServer* server, asio::io_context& ioc, Args&&... args)
      : server_(server), timer_(ioc), stream_(std::forward<Args>(args)...) {}

  void Start() {
    id_ = server_->NextConnectionId();
    if constexpr (std::is_same_v<Stream, ssl::stream<tcp::socket>>) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code ec) {
                                if (ec) {
                                  self->server_->OnHandshakeFailure();
                                  return;
                                }
                                self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    req_ = {};
    http::async_read(stream_, buffer_, req_,
                     [self = this->shared_from_this()](error_code ec, size_t) {
                       if (ec) return;
                       self->Handle();
                     });
  }

  void Handle() {
    RecordedRequest rec;
    rec.method = std::string(req_.method_string());
    rec.target = std::string(req_.target());
    for (const auto& f : req_) {
      rec.headers[absl::AsciiStrToLower(std::string(f.name_string()))] =
          std::string(f.value());
    }
    rec.body = req_.body();
    rec.connection = id_;
    rec.received = absl::Now();
    bool client_keep_alive = req_.keep_alive();
    Reply reply = server_->OnRequest(std::move(rec));
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(reply.status));
    for (const auto& [n, v] : reply.headers) res_.set(n, v);
    res_.body() = reply.body;
    close_ = reply.close || reply.silent_close || !client_keep_alive;
    res_.keep_alive(!(reply.close || !client_keep_alive));
    res_.prepare_payload();
    timer_.expires_after(absl::ToChronoNanoseconds(reply.delay));
    timer_.async_wait([self = this->shared_from_this()](error_code) {
      http::async_write(
          self->stream_, self->res_, [self](error_code ec, size_t) {
            if (ec) return;
            if (self->close_) {
              error_code ignored;
              self->Socket().shutdown(tcp::socket::shutdown_both, ignored);
              self->Socket().close(ignored);
              return;
            }
            self->Read();
          });
    });
  }

  tcp::socket& Socket() {
    if constexpr (std::is_same_v<Stream, ssl::stream<tcp::socket>>) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  TestServer* server_;
  asio::steady_timer timer_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  bool close_ = false;
  int id_ = 0;
};

}  // namespace

struct TestServer::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<ssl::context> tls;
  std::thread thread;

  void Accept(TestServer* server) {
    acceptor.async_accept([this, server](error_code ec, tcp::socket sock) {
      if (ec) return;
      if (tls) {
        std::make_shared<Session<ssl::stream<tcp::socket>>>(
            server, ioc, std::move(sock), *tls)
            ->Start();
      } else {
        std::make_shared<Session<tcp::socket>>(server, ioc, std::move(sock))
            ->Start();
      }
      Accept(server);
    });
  }
};

TestServer::TestServer(Options options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  if (options_.tls) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(options_.cert_file);
    impl_->tls->use_private_key_file(options_.key_file, ssl::context::pem);
    if (!options_.client_ca_file.empty()) {
      impl_->tls->load_verify_file(options_.client_ca_file);
      impl_->tls->set_verify_mode(ssl::verify_peer |
                                  ssl::verify_fail_if_no_peer_cert);
    }
  }
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->Accept(this);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

TestServer::~TestServer() {
  impl_->ioc.stop();
  impl_->thread.join();
}

std::string TestServer::Url(const std::string& path) const {
  return absl::StrCat(options_.tls ? "https" : "http", "://127.0.0.1:", port_,
                      path);
}

void TestServer::Script(std::vector<Reply> replies) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& r : replies) script_.push_back(std::move(r));
}

void TestServer::SetDefault(Reply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  default_reply_ = std::move(reply);
}

std::vector<RecordedRequest> TestServer::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t TestServer::RequestCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

int TestServer::Connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

int TestServer::HandshakeFailures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handshake_failures_;
}

bool TestServer::WaitForRequests(size_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return requests_.size() >= n; });
}

bool TestServer::WaitForHandshakeFailures(int n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return handshake_failures_ >= n; });
}

void TestServer::SetHandler(
    std::function<Reply(const RecordedRequest&)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(handler);
}

Reply TestServer::OnRequest(RecordedRequest req) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(std::move(req));
  cv_.notify_all();
  if (script_.empty()) {
    return handler_ ? handler_(requests_.back()) : default_reply_;
  }
  Reply r = std::move(script_.front());
  script_.pop_front();
  return r;
}

void TestServer::OnHandshakeFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++handshake_failures_;
  cv_.notify_all();
}

int TestServer::NextConnectionId() {
  std::lock_guard<std::mutex> lock(mu_);
  return ++connections_;
}

namespace {

bool Run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TestPki::TestPki() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "promrelay-pki-XXXXXX")
          .string();
  if (mkdtemp(tmpl.data()) == nullptr) return;
  dir = tmpl;
  auto p = [&](const char* f) { return dir + "/" + f; };
  ca_cert = p("ca.crt");
  ca_key = p("ca.key");
  server_cert = p("server.crt");
  server_key = p("server.key");
  client_cert = p("client.crt");
  client_key = p("client.key");
  other_ca_cert = p("other-ca.crt");
  {
    std::ofstream ext(p("server.ext"));
    ext << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
           "extendedKeyUsage=serverAuth\n";
    std::ofstream cext(p("client.ext"));
    cext << "extendedKeyUsage=clientAuth\n";
  }
  const std::string key =
      "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string ca_ext =
      "-addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign";
  ok = Run(absl::StrCat("openssl req -x509 ", key, " -keyout ", ca_key,
                        " -out ", ca_cert,
                        " -days 2 -subj /CN=promrelay-test-ca ", ca_ext)) &&
       Run(absl::StrCat("openssl req -x509 ", key, " -keyout ",
                        p("other-ca.key"), " -out ", other_ca_cert,
                        " -days 2 -subj /CN=promrelay-other-ca ", ca_ext)) &&
       Run(absl::StrCat("openssl req ", key, " -keyout ", server_key, " -out ",
                        p("server.csr"), " -subj /CN=localhost")) &&
       Run(absl::StrCat("openssl x509 -req -in ", p("server.csr"), " -CA ",
                        ca_cert, " -CAkey ", ca_key,
                        " -CAcreateserial -days 2 -out ", server_cert,
                        " -extfile ", p("server.ext"))) &&
       Run(absl::StrCat("openssl req ", key, " -keyout ", client_key, " -out ",
                        p("client.csr"), " -subj /CN=promrelay-client")) &&
       Run(absl::StrCat("openssl x509 -req -in ", p("client.csr"), " -CA ",
                        ca_cert, " -CAkey ", ca_key,
                        " -CAcreateserial -days 2 -out ", client_cert,
                        " -extfile ", p("client.ext")));
}

TestPki::~TestPki() {
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

}  // namespace promrelay::forward::testing
