// Test helpers of the HTTP generator: an in-process server on 127.0.0.1 whose answers a
// test controls, and a port that accepts connections and never answers.
#pragma once

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/catch.hpp"
#include "tandem/backends/http.hpp"

namespace tandem_test {

// An httplib::Server on a free port of 127.0.0.1, run in a thread; stopped and joined on
// destruction. Register handlers on `server` before calling start().
struct fake_server {
  httplib::Server server;
  std::thread thread;
  int port = -1;

  void start() {
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
    for (int i = 0; i < 500 && !server.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(server.is_running());
  }
  std::string url(const std::string& prefix = "/v1") const {
    return "http://127.0.0.1:" + std::to_string(port) + prefix;
  }
  ~fake_server() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
};

// A socket that listens on 127.0.0.1 and never accepts: the kernel completes connections,
// nothing ever answers, so a client's read times out.
struct silent_port {
  int fd = -1;
  int port = -1;
  silent_port() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~silent_port() { ::close(fd); }
};

// A port on 127.0.0.1 that nothing listens on (bound, then released).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace tandem_test
