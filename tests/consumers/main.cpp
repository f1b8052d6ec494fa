// The program every consumer project builds: it includes the umbrella header and uses
// result, errc and rng, as a user's first program would. Exits non-zero on a wrong answer.
#include <tandem/tandem.hpp>

#include <cstdio>

namespace {

tandem::result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return tandem::errc::parse_error;
  return c - '0';
}

}  // namespace

int main() {
  const tandem::result<int> seven = parse_digit('7');
  const tandem::result<int> bad = parse_digit('x');
  if (!seven || *seven != 7) return 1;
  if (bad || tandem::to_string(bad.error()) != "parse_error") return 2;

  tandem::rng a(2026), b(2026);
  for (int i = 0; i < 8; ++i)
    if (a() != b()) return 3;
  if (a.below(6) >= 6) return 4;

  std::printf("tandem %d.%d.%d consumed\n", TANDEM_VERSION_MAJOR, TANDEM_VERSION_MINOR,
              TANDEM_VERSION_PATCH);
  return 0;
}
