#include "proxy/metrics/metrics.h"

#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace promrelay::metrics {
namespace {

// A small parser for the text format: enough to read our own output back
// and to reject anything malformed.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

struct Parsed {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;
  std::vector<std::string> family_order;
};

std::string Unescape(const std::string& s, size_t* pos, char end) {
  std::string out;
  while (*pos < s.size() && s[*pos] != end) {
    char c = s[(*pos)++];
    if (c == '\\') {
      REQUIRE(*pos < s.size());
      char e = s[(*pos)++];
      if (e == 'n') {
        out += '\n';
      } else if (e == '\\' || e == '"') {
        out += e;
      } else {
        FAIL("bad escape \\" << e);
      }
    } else {
      REQUIRE(c != '\n');
      out += c;
    }
  }
  return out;
}

Parsed Parse(const std::string& text) {
  Parsed p;
  REQUIRE((text.empty() || text.back() == '\n'));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      std::string name = rest.substr(0, sp);
      size_t pos = sp + 1;
      std::string help;
      while (pos < rest.size()) {
        char c = rest[pos++];
        if (c == '\\') {
          char e = rest[pos++];
          help += e == 'n' ? '\n' : e;
        } else {
          help += c;
        }
      }
      REQUIRE(p.help.count(name) == 0);
      p.help[name] = help;
      p.family_order.push_back(name);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      std::string name = rest.substr(0, sp);
      REQUIRE(p.help.count(name) == 1);  // HELP comes first here
      p.type[name] = rest.substr(sp + 1);
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') {
      s.name += line[pos++];
    }
    REQUIRE(!s.name.empty());
    if (line[pos] == '{') {
      ++pos;
      while (line[pos] != '}') {
        std::string lname;
        while (line[pos] != '=') lname += line[pos++];
        ++pos;
        REQUIRE(line[pos] == '"');
        ++pos;
        std::string v = Unescape(line, &pos, '"');
        REQUIRE(line[pos] == '"');
        ++pos;
        REQUIRE(s.labels.count(lname) == 0);
        s.labels[lname] = v;
        if (line[pos] == ',') ++pos;
      }
      ++pos;
    }
    REQUIRE(line[pos] == ' ');
    s.value = line.substr(pos + 1);
    REQUIRE(!s.value.empty());
    REQUIRE(s.value.find(' ') == std::string::npos);
    p.samples.push_back(s);
  }
  return p;
}

const Sample* Find(const Parsed& p, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  for (const auto& s : p.samples) {
    if (s.name == name && s.labels == labels) return &s;
  }
  return nullptr;
}

TEST_CASE("counter and gauge exposition with HELP and TYPE") {
  Registry r;
  auto& c = r.AddCounter("test_requests_total", "Requests handled.", {"code"});
  c.With({"200"}).Inc();
  c.With({"200"}).Inc(2);
  c.With({"500"}).Inc();
  auto& g = r.AddGauge("test_queue_bytes", "Bytes queued.");
  g.With({}).Set(1234.5);

  Parsed p = Parse(r.Expose());
  CHECK(p.type["test_requests_total"] == "counter");
  CHECK(p.help["test_requests_total"] == "Requests handled.");
  CHECK(p.type["test_queue_bytes"] == "gauge");
  const Sample* s200 = Find(p, "test_requests_total", {{"code", "200"}});
  REQUIRE(s200 != nullptr);
  CHECK(s200->value == "3");
  const Sample* s500 = Find(p, "test_requests_total", {{"code", "500"}});
  REQUIRE(s500 != nullptr);
  CHECK(s500->value == "1");
  const Sample* gs = Find(p, "test_queue_bytes", {});
  REQUIRE(gs != nullptr);
  CHECK(gs->value == "1234.5");
}

TEST_CASE("families are sorted by name and unlabelled ones show 0") {
  Registry r;
  r.AddCounter("zzz_total", "z");
  r.AddCounter("aaa_total", "a");
  r.AddGauge("mmm", "m");
  Parsed p = Parse(r.Expose());
  REQUIRE(p.family_order ==
          std::vector<std::string>{"aaa_total", "mmm", "zzz_total"});
  const Sample* z = Find(p, "zzz_total", {});
  REQUIRE(z != nullptr);
  CHECK(z->value == "0");
}

TEST_CASE("labelled family without children exposes nothing") {
  Registry r;
  r.AddCounter("lonely_total", "no children yet", {"destination"});
  CHECK(r.Expose().empty());
}

TEST_CASE("label values and help are escaped") {
  Registry r;
  auto& c = r.AddCounter("esc_total", "Help with \\ backslash\nand newline.",
                         {"destination", "reason"});
  std::string nasty = "a\"b\\c\nd";
  c.With({nasty, "x"}).Inc();
  std::string text = r.Expose();
  CHECK(text.find(
            "esc_total{destination=\"a\\\"b\\\\c\\nd\",reason=\"x\"} 1\n") !=
        std::string::npos);
  CHECK(
      text.find("# HELP esc_total Help with \\\\ backslash\\nand newline.\n") !=
      std::string::npos);
  Parsed p = Parse(text);
  CHECK(p.help["esc_total"] == "Help with \\ backslash\nand newline.");
  CHECK(Find(p, "esc_total", {{"destination", nasty}, {"reason", "x"}}) !=
        nullptr);
}

TEST_CASE("histogram buckets are cumulative with le, sum and count") {
  Registry r;
  auto& h = r.AddHistogram("lat_seconds", "Latency.", {"path"}, {0.1, 1, 10});
  auto& child = h.With({"/w"});
  child.Observe(0.05);
  child.Observe(0.1);  // le is inclusive
  child.Observe(0.5);
  child.Observe(100);
  Parsed p = Parse(r.Expose());
  CHECK(p.type["lat_seconds"] == "histogram");
  auto bucket = [&](const std::string& le) {
    const Sample* s =
        Find(p, "lat_seconds_bucket", {{"path", "/w"}, {"le", le}});
    REQUIRE(s != nullptr);
    return s->value;
  };
  CHECK(bucket("0.1") == "2");
  CHECK(bucket("1") == "3");
  CHECK(bucket("10") == "3");
  CHECK(bucket("+Inf") == "4");
  const Sample* count = Find(p, "lat_seconds_count", {{"path", "/w"}});
  REQUIRE(count != nullptr);
  CHECK(count->value == "4");
  const Sample* sum = Find(p, "lat_seconds_sum", {{"path", "/w"}});
  REQUIRE(sum != nullptr);
  CHECK(std::stod(sum->value) == Approx(100.65));
}

TEST_CASE("histogram snapshot and default duration buckets") {
  auto b = DurationBuckets();
  REQUIRE(!b.empty());
  CHECK(b.front() == 0.001);
  CHECK(b.back() == 60);
  CHECK(std::is_sorted(b.begin(), b.end()));
  Histogram h(b);
  h.Observe(0.0005);
  h.Observe(61);
  auto s = h.Take();
  CHECK(s.count == 2);
  CHECK(s.cumulative_counts.front() == 1);
  CHECK(s.cumulative_counts.back() == 2);
  CHECK(s.cumulative_counts[s.cumulative_counts.size() - 2] == 1);
}

TEST_CASE("registering twice returns the same family") {
  Registry r;
  auto& a = r.AddCounter("dup_total", "x", {"l"});
  auto& b = r.AddCounter("dup_total", "x", {"l"});
  CHECK(&a == &b);
  a.With({"v"}).Inc();
  CHECK(b.With({"v"}).Value() == 1);
}

TEST_CASE("Remove drops a child from the exposition") {
  Registry r;
  auto& c = r.AddCounter("rm_total", "x", {"destination"});
  c.With({"a"}).Inc();
  c.With({"b"}).Inc();
  c.Remove({"a"});
  Parsed p = Parse(r.Expose());
  CHECK(Find(p, "rm_total", {{"destination", "a"}}) == nullptr);
  CHECK(Find(p, "rm_total", {{"destination", "b"}}) != nullptr);
}

TEST_CASE("refreshers run before exposition and can be removed") {
  Registry r;
  auto& g = r.AddGauge("refreshed", "x");
  int calls = 0;
  uint64_t id = r.AddRefresher([&] { g.With({}).Set(++calls); });
  Parsed p = Parse(r.Expose());
  CHECK(Find(p, "refreshed", {})->value == "1");
  p = Parse(r.Expose());
  CHECK(Find(p, "refreshed", {})->value == "2");
  r.RemoveRefresher(id);
  p = Parse(r.Expose());
  CHECK(Find(p, "refreshed", {})->value == "2");
  CHECK(calls == 2);
}

TEST_CASE("special float values") {
  Registry r;
  auto& g = r.AddGauge("special", "x", {"k"});
  g.With({"inf"}).Set(std::numeric_limits<double>::infinity());
  g.With({"ninf"}).Set(-std::numeric_limits<double>::infinity());
  g.With({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  g.With({"small"}).Set(1e-9);
  Parsed p = Parse(r.Expose());
  CHECK(Find(p, "special", {{"k", "inf"}})->value == "+Inf");
  CHECK(Find(p, "special", {{"k", "ninf"}})->value == "-Inf");
  CHECK(Find(p, "special", {{"k", "nan"}})->value == "NaN");
  CHECK(std::stod(Find(p, "special", {{"k", "small"}})->value) == 1e-9);
}

TEST_CASE("concurrent increments are not lost") {
  Registry r;
  auto& c = r.AddCounter("conc_total", "x", {"t"});
  auto& h = r.AddHistogram("conc_seconds", "x");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.With({"same"}).Inc();
        h.With({}).Observe(0.01);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(c.With({"same"}).Value() == 40000);
  CHECK(h.With({}).Take().count == 40000);
}

TEST_CASE("Default registry is a singleton") {
  CHECK(&Default() == &Default());
}

}  // namespace
}  // namespace promrelay::metrics
