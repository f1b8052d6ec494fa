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

#include "backends/http_loopback.hpp"
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
  silent_port() { fd = listen_loopback(port); }
  ~silent_port() { ::close(fd); }
};

// A port on 127.0.0.1 that nothing listens on (taken, then released).
inline int free_port() {
  int port = -1;
  ::close(listen_loopback(port));
  return port;
}

}  // namespace tandem_test
