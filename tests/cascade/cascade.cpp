// Cascades: threshold search under a budget, escalation-rate quantiles, the guaranteed
// (learn-then-test) threshold, the online controller, policies, traces and replay.
#include "tandem/cascade.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "common/format_fixtures.hpp"
#include "common/scratch_dir.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/rng.hpp"

using tandem::cascade_decision;
using tandem::cascade_policy;
using tandem::errc;

namespace {

// Synthetic k-stage data: stage s is right with probability acc[s]; its score is a noisy
// view of correctness (so higher scores mean likelier right).
struct synth {
  std::vector<double> score, quality, cost;
  std::size_t k;
};

synth make_data(std::size_t n, std::uint64_t seed, std::vector<double> acc,
                std::vector<double> cost) {
  tandem::rng g(seed);
  synth d{{}, {}, {}, acc.size()};
  for (std::size_t i = 0; i < n; ++i) {
    const double hard = g.uniform();
    for (std::size_t s = 0; s < d.k; ++s) {
      const bool right = g.uniform() < acc[s] * (1.2 - 0.4 * hard);
      d.quality.push_back(right ? 1.0 : 0.0);
      d.score.push_back(0.6 * (right ? 1.0 : 0.0) + 0.4 * g.uniform() - 0.2 * hard);
      d.cost.push_back(cost[s]);
    }
  }
  return d;
}

tandem::cascade_views views(const synth& d) { return {d.score, d.quality, d.cost, d.k}; }

}  // namespace

TEST_CASE("cascade: budget search never exceeds the budget and beats every affordable single stage",
          "[cascade][threshold]") {
  const synth d = make_data(600, 7, {0.55, 0.7, 0.85}, {1, 5, 20});
  for (double budget : {1.0, 3.0, 6.0, 12.0, 25.0, 30.0}) {
    auto r = tandem::search_budget(views(d), budget);
    REQUIRE(r);
    CHECK(r->point.cost <= budget);
    auto again = tandem::evaluate_cascade(r->policy, views(d));
    REQUIRE(again);
    CHECK(again->cost == r->point.cost);
    CHECK(again->quality == r->point.quality);
    for (std::size_t s = 0; s < 3; ++s) {
      auto single = tandem::evaluate_cascade(cascade_policy::chain({s}, 0.0), views(d));
      if (single->cost <= budget) CHECK(r->point.quality >= single->quality);
    }
  }
  CHECK(tandem::search_budget(views(d), 0.5).error() == errc::not_found);
  CHECK(tandem::search_budget(views(d), std::nan("")).error() == errc::invalid_argument);
}

TEST_CASE("cascade: the escalation-rate threshold escalates the requested share",
          "[cascade][threshold]") {
  std::vector<double> s;
  tandem::rng g(3);
  for (int i = 0; i < 1000; ++i) s.push_back(g.uniform());
  for (double rate : {0.0, 0.1, 0.37, 0.9, 1.0}) {
    const double t = *tandem::threshold_for_escalation_rate(s, rate);
    std::size_t esc = 0;
    for (double x : s) esc += x < t ? 1 : 0;
    CHECK(esc == static_cast<std::size_t>(std::floor(rate * 1000)));
  }
  CHECK(tandem::threshold_for_escalation_rate({}, 0.5).error() == errc::empty_input);
  CHECK(tandem::threshold_for_escalation_rate(s, 1.5).error() == errc::invalid_argument);
  s[4] = std::nan("");
  CHECK(tandem::threshold_for_escalation_rate(s, 0.5).error() == errc::non_finite);
}

TEST_CASE(
    "cascade: the guaranteed threshold keeps the loss below epsilon with probability 1 - delta",
    "[cascade][risk]") {
  const tandem::risk_control_options opt{0.05, 0.1};
  int violations = 0, useful = 0;
  constexpr int seeds = 200;
  for (int seed = 0; seed < seeds; ++seed) {
    const synth cal = make_data(500, 1000 + seed, {0.6, 0.9}, {1, 10});
    const synth test = make_data(20000, 5000 + seed, {0.6, 0.9}, {1, 10});
    std::vector<double> s, qw, qs;
    for (std::size_t i = 0; i < 500; ++i) {
      s.push_back(cal.score[i * 2]);
      qw.push_back(cal.quality[i * 2]);
      qs.push_back(cal.quality[i * 2 + 1]);
    }
    auto r = tandem::guaranteed_threshold(s, qw, qs, opt);
    REQUIRE(r);
    double loss = 0;
    for (std::size_t i = 0; i < 20000; ++i)
      if (test.score[i * 2] >= r->threshold) loss += test.quality[i * 2 + 1] - test.quality[i * 2];
    loss /= 20000;
    violations += loss > opt.epsilon ? 1 : 0;
    useful += r->acceptance > 0.2 ? 1 : 0;
  }
  CHECK(violations <= seeds * 0.1);
  CHECK(useful > seeds / 2);  // the guarantee is not met by always escalating
  const std::vector<double> one{0.5};
  CHECK(tandem::guaranteed_threshold(one, one, one, {0.0, 0.1}).error() == errc::invalid_argument);
  CHECK(tandem::guaranteed_threshold(one, one, {}, opt).error() == errc::size_mismatch);
  CHECK(tandem::guaranteed_threshold({}, {}, {}, opt).error() == errc::empty_input);
}

TEST_CASE("cascade: the online controller converges to the target rate after the scores shift",
          "[cascade][controller]") {
  tandem::escalation_controller c(0.25, 0.005, 0.5);
  tandem::rng g(11);
  const auto run = [&](double lo, double hi, int steps) {
    int esc = 0;
    for (int i = 0; i < steps; ++i) {
      const double u = g.uniform();
      const double s = lo + (hi - lo) * u * u;  // skewed, not uniform
      const bool e = c.observe(s) == cascade_decision::escalate;
      if (i >= steps / 2) esc += e ? 1 : 0;
    }
    return esc / static_cast<double>(steps / 2);
  };
  CHECK(std::abs(run(0.0, 1.0, 20000) - 0.25) < 0.02);
  CHECK(std::abs(run(0.5, 0.9, 20000) - 0.25) < 0.02);           // drift: every score rises
  CHECK(std::abs(c.threshold() - (0.5 + 0.4 * 0.0625)) < 0.02);  // the new 25% quantile
}

TEST_CASE("cascade: a policy survives save and load exactly, and corrupt files are named",
          "[cascade][policy]") {
  cascade_policy p = cascade_policy::chain({2, 0, 1}, 0.123456789);
  p.abstain_below[1] = 0.01;
  auto q = cascade_policy::from_text(p.to_text());
  REQUIRE(q);
  CHECK(q->order == p.order);
  CHECK(q->accept == p.accept);
  CHECK(q->abstain_below == p.abstain_below);
  const tandem_test::scratch_dir dir("tandem-cascade-");
  const std::string path = (dir.path() / "policy.txt").string();
  REQUIRE(p.save(path) == errc::ok);
  auto l = cascade_policy::load(path);
  REQUIRE(l);
  CHECK(l->accept == p.accept);
  tandem::error_info info;
  CHECK(cascade_policy::load("no/such/file", &info).error() == errc::file_not_found);
  CHECK(info.context().find("no/such/file") != std::string_view::npos);
  const std::string s = p.to_text();
  CHECK(cascade_policy::from_text(s.substr(0, s.size() - 1), &info).error() == errc::corrupt_file);
  CHECK(info.line == 4);
  CHECK(cascade_policy::from_text("tandem-cascade-policy 2\n0 0x1p-1 -inf\n", &info).error() ==
        errc::unsupported_version);
  CHECK(info.context().find("version 2; this build reads version 1") != std::string_view::npos);
  CHECK(cascade_policy::from_text("tandem-cascade-policy 1\n0 nan -inf\n").error() ==
        errc::corrupt_file);
  CHECK(cascade_policy::from_text("tandem-cascade-policy 1\n0 1 -inf\n0 1 -inf\n").error() ==
        errc::corrupt_file);
  CHECK(cascade_policy::from_text("tandem-cascade-policy 1\n").error() == errc::corrupt_file);
  CHECK(cascade_policy::from_text("garbage").error() == errc::corrupt_file);
  // A bad field is reported at its line and column, and a file names itself.
  CHECK(cascade_policy::from_text("tandem-cascade-policy 1\n0 1 -inf\n1 x -inf\n", &info).error() ==
        errc::corrupt_file);
  CHECK(info.line == 3);
  CHECK(info.column == 3);
  CHECK(info.context().find("accept threshold") != std::string_view::npos);
  REQUIRE(tandem::detail::write_file(path, std::string_view("tandem-cascade-policy 1\nx\n")) ==
          errc::ok);
  CHECK(cascade_policy::load(path, &info).error() == errc::corrupt_file);
  CHECK(info.context().find(path + ": ") == 0);
  CHECK(info.line == 2);
}

TEST_CASE("cascade: a policy file written before the bytes layer loads and decides identically",
          "[cascade][policy]") {
  const auto p = cascade_policy::load(tandem_test::format_fixture("cascade_policy.v1.txt"));
  REQUIRE(p);
  const auto expected = tandem_test::format_fixture_lines("cascade_policy.expected");
  REQUIRE(expected.size() == 3 * 11);
  for (const auto& line : expected) {
    REQUIRE(line.size() == 3);
    const std::size_t rank = std::stoul(line[0]);
    REQUIRE(rank < p->order.size());
    CHECK(tandem::to_string(p->decide(rank, tandem_test::hex_double(line[1]))) == line[2]);
  }
}

namespace {
// A deterministic generator answering a fixed text at a fixed cost.
struct fixed_generator {
  std::string text;
  double cost;
  int* calls;
  tandem::result<tandem::completion> generate(const tandem::generate_request&) {
    ++*calls;
    tandem::completion c;
    c.text = text;
    c.cost = cost;
    return c;
  }
};
}  // namespace

TEST_CASE("cascade: a run escalates until a stage is confident and its trace replays exactly",
          "[cascade][run]") {
  int calls[3] = {0, 0, 0};
  // The scorer reads the confidence from the answer text: "sure" 0.9, else 0.2.
  auto scorer = [](std::string_view, const tandem::completion& c) -> tandem::result<double> {
    return c.text == "sure" ? 0.9 : 0.2;
  };
  tandem::cascade cas;
  REQUIRE(cas.add_stage({fixed_generator{"unsure", 0.5, &calls[0]}, 1.0, scorer}) == errc::ok);
  REQUIRE(cas.add_stage({fixed_generator{"sure", 1.0, &calls[1]}, 4.0, scorer}) == errc::ok);
  REQUIRE(cas.add_stage({fixed_generator{"unsure", 0.0, &calls[2]}, 20.0, scorer}) == errc::ok);
  CHECK(cas.add_stage({fixed_generator{"x", 0, &calls[0]}, -1.0, scorer}) ==
        errc::invalid_argument);
  CHECK(cas.set_policy(cascade_policy::chain({0, 3}, 0.5)) == errc::invalid_argument);
  REQUIRE(cas.set_policy(cascade_policy::chain({0, 1, 2}, 0.5)) == errc::ok);
  auto r = cas.run({"question"});
  REQUIRE(r);
  REQUIRE(r->answer);
  CHECK(r->answer->text == "sure");
  CHECK(r->answered_by == 1);
  CHECK(r->cost == 1.5 + 5.0);
  REQUIRE(r->trace.size() == 2);
  CHECK(r->trace[0].decision == cascade_decision::escalate);
  CHECK(r->trace[1].decision == cascade_decision::accept);
  CHECK(calls[2] == 0);

  std::vector<tandem::cascade_trace_entry> replayed;
  const std::vector<double> scores{r->trace[0].score, r->trace[1].score};
  const std::vector<double> costs{r->trace[0].cost, r->trace[1].cost};
  REQUIRE(tandem::replay_trace(cas.policy(), 3, scores, costs, replayed) == errc::ok);
  REQUIRE(replayed.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(replayed[i].stage == r->trace[i].stage);
    CHECK(replayed[i].decision == r->trace[i].decision);
    CHECK(replayed[i].threshold == r->trace[i].threshold);
  }

  // The last stage abstains below its threshold.
  cascade_policy strict = cascade_policy::chain({0, 2}, 0.5);
  strict.accept[1] = 0.5;
  REQUIRE(cas.set_policy(strict) == errc::ok);
  auto a = cas.run({"question"});
  REQUIRE(a);
  CHECK(!a->answer);
  CHECK(a->trace.back().decision == cascade_decision::abstain);
  CHECK(tandem::replay_trace(strict, 3, std::vector<double>{0.1}, std::vector<double>{1.0},
                             replayed) == errc::size_mismatch);
}

TEST_CASE("cascade: bad labelled data is rejected with a named error", "[cascade][threshold]") {
  std::vector<double> s{0.1, 0.2}, q{1, 0}, c{1, 2};
  const cascade_policy p = cascade_policy::chain({0, 1}, 0.5);
  CHECK(tandem::evaluate_cascade(p, {s, q, c, 2}));
  CHECK(tandem::evaluate_cascade(p, {s, q, c, 0}).error() == errc::invalid_argument);
  CHECK(tandem::evaluate_cascade(p, {{}, {}, {}, 2}).error() == errc::empty_input);
  CHECK(tandem::evaluate_cascade(p, {s, q, std::vector<double>{1}, 2}).error() ==
        errc::size_mismatch);
  std::vector<double> bad_q{1.5, 0};
  CHECK(tandem::evaluate_cascade(p, {s, bad_q, c, 2}).error() == errc::invalid_argument);
  std::vector<double> bad_c{1, INFINITY};
  CHECK(tandem::evaluate_cascade(p, {s, q, bad_c, 2}).error() == errc::non_finite);
  std::vector<double> nan_s{std::nan(""), 0.2};
  CHECK(tandem::evaluate_cascade(p, {nan_s, q, c, 2}).error() == errc::non_finite);
  CHECK(tandem::evaluate_cascade(cascade_policy::chain({0, 0}, 0.5), {s, q, c, 2}).error() ==
        errc::invalid_argument);
}

TEST_CASE("cascade: controller settings out of range are invalid_argument, never an abort",
          "[cascade][controller][errors]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct bad {
    double rate, step, threshold;
  };
  for (const bad& b :
       {bad{0.0, 0.01, 0.5}, bad{1.0, 0.01, 0.5}, bad{nan, 0.01, 0.5}, bad{0.2, 0.0, 0.5},
        bad{0.2, inf, 0.5}, bad{0.2, 0.01, inf}, bad{0.2, 0.01, nan}}) {
    INFO("rate " << b.rate << " step " << b.step << " threshold " << b.threshold);
    CHECK(tandem::escalation_controller::validate(b.rate, b.step, b.threshold) ==
          errc::invalid_argument);
    tandem::error_info info;
    const auto made = tandem::escalation_controller::create(b.rate, b.step, b.threshold, &info);
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error() == errc::invalid_argument);
    CHECK(info.code == errc::invalid_argument);
    CHECK(info.context().find("escalation_controller") != std::string_view::npos);
    // Made anyway: it says so, escalates every score and learns nothing.
    tandem::escalation_controller c(b.rate, b.step, b.threshold);
    CHECK(c.validate() == errc::invalid_argument);
    CHECK(c.observe(1e9) == cascade_decision::escalate);
    CHECK(c.observe(-1e9) == cascade_decision::escalate);
    CHECK(c.seen() == 0);
    CHECK(c.escalated() == 0);
  }
  const auto good = tandem::escalation_controller::create(0.25, 0.005, 0.5);
  REQUIRE(good.has_value());
  CHECK(good->validate() == errc::ok);
  tandem::escalation_controller c = *good;
  CHECK(c.observe(0.9) == cascade_decision::accept);
  CHECK(c.seen() == 1);
  CHECK(c.threshold() != 0.5);
}
