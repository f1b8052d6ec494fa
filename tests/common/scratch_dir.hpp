// Test helper: a temporary directory of its own per test process (ctest runs test cases
// in parallel processes), removed with everything in it when the object is destroyed.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace tandem_test {

/// A fresh directory under the system's temporary directory, named `prefix` plus random
/// digits; removed (recursively) by the destructor.
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& prefix) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  /// The directory.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tandem_test
