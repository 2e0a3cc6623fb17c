// `promrelay test-rules`: runs series through the configured rules exactly as
// the proxy routes them (global relabel_configs, then each destination's
// write_relabel_configs, then the forbidden-label guard) and prints, or
// compares against a golden file, what every destination would receive.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "proxy/cli/cli.h"
#include "proxy/cli/flags.h"
#include "proxy/cli/json.h"
#include "proxy/cli/series.h"
#include "proxy/config/config.h"
#include "proxy/relabel/relabel.h"

namespace promrelay::cli {
namespace {

constexpr char kUsage[] =
    R"(Usage: promrelay test-rules --config FILE [--input FILE] [--golden FILE [--update]]

Runs series through the configuration's rules the way the proxy routes them:
global relabel_configs, then each destination's write_relabel_configs, then
the destination's forbidden_labels guard. Prints one JSON line per series:

  {"input":{labels},"destinations":{"<name>":{labels}|null,...}}

(null: the destination would not receive the series). Labels are sorted and
destinations are in config order.

Input (--input FILE, or standard input), one series per line:
  up{job="shuttle",instance="10.0.0.1:9090"}        Prometheus notation
  {__name__="up",job="x"}  {"my.metric","a.b"="c"}   quoted UTF-8 names
  {"__name__":"up","job":"x"}                        JSON object
A trailing sample value and timestamp are ignored; blank lines and lines
starting with # are skipped. Values take the escapes \\ \" and \n.

Secret and TLS files are not read, so this runs where they are not mounted;
${ENV} references in the config must still be set.

Flags:
  --config FILE   the configuration file (required)
  --input FILE    read series from FILE instead of standard input
  --golden FILE   compare with FILE (JSON lines as printed) instead of
                  printing; exit 1 with a diff when they differ
  --update        with --golden: rewrite FILE with the current results
  --help          show this help

Exit status: 0 ok, 1 invalid config/input or golden mismatch, 2 usage error.
)";

using Destinations = std::vector<std::optional<LabelSet>>;

struct Result {
  int input_line = 0;
  LabelSet input;
  Destinations destinations;  // in config order
};

LabelSet FromSpan(absl::Span<const relabel::Label> labels) {
  LabelSet out;
  out.reserve(labels.size());
  for (const relabel::Label& l : labels) {
    out.emplace_back(std::string(l.name), std::string(l.value));
  }
  return out;
}

std::vector<relabel::Label> Views(const LabelSet& labels) {
  std::vector<relabel::Label> out;
  out.reserve(labels.size());
  for (const auto& [name, value] : labels) out.push_back({name, value});
  return out;
}

class Router {
 public:
  explicit Router(const config::Config& config) : config_(config) {}

  Destinations Route(const LabelSet& input, int line, std::ostream& err) {
    Destinations out(config_.remote_write.size());
    std::vector<relabel::Label> views = Views(input);
    builder_.Reset(views);
    if (!config_.relabel_configs.Apply(builder_)) return out;
    LabelSet global = FromSpan(builder_.Result());
    std::vector<relabel::Label> global_views = Views(global);
    for (size_t i = 0; i < config_.remote_write.size(); ++i) {
      const config::Destination& d = config_.remote_write[i];
      builder_.Reset(global_views);
      if (!d.write_relabel_configs.Apply(builder_)) continue;
      LabelSet result = FromSpan(builder_.Result());
      std::string forbidden;
      for (const auto& [name, value] : result) {
        for (const std::string& f : d.forbidden_labels) {
          if (name == f)
            absl::StrAppend(&forbidden, forbidden.empty() ? "" : ", ", name);
        }
      }
      if (!forbidden.empty()) {
        err << "line " << line << ": " << d.name
            << ": the series still carries forbidden label(s) " << forbidden
            << " after write_relabel_configs; the proxy would not send it "
               "(promrelay_forbidden_label_violations_total)\n";
        continue;
      }
      out[i] = std::move(result);
    }
    return out;
  }

 private:
  const config::Config& config_;
  relabel::LabelBuilder builder_;
};

std::string RenderLine(const config::Config& config, const Result& r) {
  std::string out = "{\"input\":";
  out += LabelSetToJson(r.input);
  out += ",\"destinations\":{";
  for (size_t i = 0; i < config.remote_write.size(); ++i) {
    if (i > 0) out += ",";
    AppendJsonString(&out, config.remote_write[i].name);
    out += ":";
    out += r.destinations[i] ? LabelSetToJson(*r.destinations[i]) : "null";
  }
  out += "}}";
  return out;
}

std::string Render(const std::optional<LabelSet>& labels) {
  return labels ? LabelSetToJson(*labels) : "null";
}

struct GoldenEntry {
  int line = 0;
  LabelSet input;
  std::vector<std::pair<std::string, std::optional<LabelSet>>> destinations;
};

absl::StatusOr<LabelSet> LabelsFromJson(const JsonValue& v,
                                        absl::string_view what) {
  if (v.type != JsonValue::Type::kObject) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": want an object of label -> value"));
  }
  LabelSet out;
  for (const auto& [name, value] : v.object) {
    if (value.type != JsonValue::Type::kString) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": label \"", name, "\" has a non-string value"));
    }
    out.emplace_back(name, value.text);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<GoldenEntry> ParseGoldenLine(absl::string_view line) {
  size_t consumed = 0;
  absl::StatusOr<JsonValue> v = ParseJson(line, &consumed);
  if (!v.ok()) return v.status();
  if (absl::StripAsciiWhitespace(line.substr(consumed)) != "") {
    return absl::InvalidArgumentError("text after the JSON object");
  }
  if (v->type != JsonValue::Type::kObject) {
    return absl::InvalidArgumentError("want a JSON object");
  }
  GoldenEntry e;
  const JsonValue* input = v->Find("input");
  const JsonValue* dests = v->Find("destinations");
  if (input == nullptr || dests == nullptr || v->object.size() != 2) {
    return absl::InvalidArgumentError(
        "want exactly the keys \"input\" and \"destinations\"");
  }
  absl::StatusOr<LabelSet> in = LabelsFromJson(*input, "input");
  if (!in.ok()) return in.status();
  e.input = *std::move(in);
  if (dests->type != JsonValue::Type::kObject) {
    return absl::InvalidArgumentError("\"destinations\" must be an object");
  }
  for (const auto& [name, value] : dests->object) {
    if (value.type == JsonValue::Type::kNull) {
      e.destinations.emplace_back(name, std::nullopt);
      continue;
    }
    absl::StatusOr<LabelSet> labels =
        LabelsFromJson(value, absl::StrCat("destination ", name));
    if (!labels.ok()) return labels.status();
    e.destinations.emplace_back(name, *std::move(labels));
  }
  return e;
}

// Writes the diff of one series to `out`; returns whether it differs.
bool DiffOne(const config::Config& config, const Result& got,
             const GoldenEntry& want, size_t index, std::ostream& out) {
  std::ostringstream body;
  bool differs = false;
  if (got.input != want.input) {
    differs = true;
    body << " input:\n-  " << LabelSetToJson(want.input) << "\n+  "
         << LabelSetToJson(got.input)
         << "\n   (the golden file is out of step with the input file)\n";
  } else {
    body << " input: " << LabelSetToText(got.input) << "\n";
  }
  for (size_t i = 0; i < config.remote_write.size(); ++i) {
    const std::string& name = config.remote_write[i].name;
    const std::optional<LabelSet>* expected = nullptr;
    for (const auto& [n, v] : want.destinations) {
      if (n == name) expected = &v;
    }
    if (expected == nullptr) {
      differs = true;
      body << " " << name << ": missing from the golden file\n+  "
           << Render(got.destinations[i]) << "\n";
    } else if (*expected != got.destinations[i]) {
      differs = true;
      body << " " << name << ":\n-  " << Render(*expected) << "\n+  "
           << Render(got.destinations[i]) << "\n";
    }
  }
  for (const auto& [n, v] : want.destinations) {
    bool configured = false;
    for (const config::Destination& d : config.remote_write) {
      configured = configured || d.name == n;
    }
    if (!configured) {
      differs = true;
      body << " " << n << ": in the golden file but not in the config\n-  "
           << Render(v) << "\n";
    }
  }
  if (differs) {
    out << "@@ series " << index + 1 << ": input line " << got.input_line
        << ", golden line " << want.line << " @@\n"
        << body.str();
  }
  return differs;
}

bool ReadAll(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buf;
  buf << in.rdbuf();
  *out = buf.str();
  return true;
}

std::vector<absl::string_view> SplitLines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == absl::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

int TestRules(const std::vector<std::string>& args, std::istream& in,
              std::ostream& out, std::ostream& err) {
  ParsedFlags flags =
      ParseFlags(args, FlagSpec{{"config", "input", "golden"}, {"update"}});
  if (flags.help) {
    out << kUsage;
    return kExitOk;
  }
  if (flags.error.empty() && !flags.values.count("config")) {
    flags.error = "--config FILE is required";
  }
  if (flags.error.empty() && flags.switches.count("update") &&
      !flags.values.count("golden")) {
    flags.error = "--update needs --golden FILE";
  }
  if (!flags.error.empty()) {
    err << "promrelay test-rules: " << flags.error
        << "\nRun 'promrelay test-rules --help' for usage.\n";
    return kExitUsage;
  }
  const std::string& config_path = flags.values["config"];
  config::LoadOptions options;
  options.read_files = false;
  std::vector<config::ConfigError> errors;
  auto loaded = config::LoadFromFile(config_path, &errors, options);
  if (!loaded.ok()) {
    if (errors.empty()) {
      err << loaded.status().message() << "\n";
    } else {
      PrintConfigErrors(config_path, errors, err);
    }
    return kExitFailure;
  }
  const config::Config& config = **loaded;

  // Read the series.
  std::string input_name = "<stdin>";
  std::string text;
  if (flags.values.count("input")) {
    input_name = flags.values["input"];
    if (!ReadAll(input_name, &text)) {
      err << "promrelay test-rules: cannot read " << input_name << ": "
          << std::strerror(errno) << "\n";
      return kExitFailure;
    }
  } else {
    std::stringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  std::vector<Result> results;
  int bad_lines = 0;
  {
    std::vector<absl::string_view> lines = SplitLines(text);
    for (size_t i = 0; i < lines.size(); ++i) {
      absl::StatusOr<std::optional<LabelSet>> parsed =
          ParseSeriesLine(lines[i]);
      if (!parsed.ok()) {
        err << input_name << ":" << i + 1 << ": " << parsed.status().message()
            << "\n";
        ++bad_lines;
        continue;
      }
      if (!parsed->has_value()) continue;
      Result r;
      r.input_line = static_cast<int>(i + 1);
      r.input = **std::move(parsed);
      results.push_back(std::move(r));
    }
  }
  if (bad_lines > 0) {
    err << input_name << ": " << bad_lines << " bad line"
        << (bad_lines == 1 ? "" : "s") << "\n";
    return kExitFailure;
  }
  Router router(config);
  for (Result& r : results) {
    r.destinations = router.Route(r.input, r.input_line, err);
  }

  if (!flags.values.count("golden")) {
    for (const Result& r : results) out << RenderLine(config, r) << "\n";
    return kExitOk;
  }

  const std::string& golden_path = flags.values["golden"];
  std::vector<GoldenEntry> golden;
  std::string golden_text;
  bool have_golden = ReadAll(golden_path, &golden_text);
  if (!have_golden && !flags.switches.count("update")) {
    err << "promrelay test-rules: cannot read " << golden_path << ": "
        << std::strerror(errno) << " (create it with --update)\n";
    return kExitFailure;
  }
  int bad_golden = 0;
  {
    std::vector<absl::string_view> lines = SplitLines(golden_text);
    for (size_t i = 0; i < lines.size(); ++i) {
      absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
      if (line.empty() || line[0] == '#') continue;
      absl::StatusOr<GoldenEntry> e = ParseGoldenLine(line);
      if (!e.ok()) {
        err << golden_path << ":" << i + 1 << ": " << e.status().message()
            << "\n";
        ++bad_golden;
        continue;
      }
      e->line = static_cast<int>(i + 1);
      golden.push_back(*std::move(e));
    }
  }
  if (bad_golden > 0 && !flags.switches.count("update")) return kExitFailure;

  std::ostringstream diff;
  size_t differing = 0;
  size_t common = std::min(results.size(), golden.size());
  for (size_t i = 0; i < common; ++i) {
    if (DiffOne(config, results[i], golden[i], i, diff)) ++differing;
  }
  for (size_t i = common; i < results.size(); ++i) {
    ++differing;
    diff << "@@ series " << i + 1 << ": input line " << results[i].input_line
         << ", not in the golden file @@\n+" << RenderLine(config, results[i])
         << "\n";
  }
  for (size_t i = common; i < golden.size(); ++i) {
    ++differing;
    diff << "@@ golden line " << golden[i].line
         << ": no such series in the input @@\n- input: "
         << LabelSetToText(golden[i].input) << "\n";
  }

  if (flags.switches.count("update")) {
    std::string tmp = golden_path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      for (const Result& r : results) f << RenderLine(config, r) << "\n";
      f.flush();
      if (!f) {
        err << "promrelay test-rules: cannot write " << tmp << ": "
            << std::strerror(errno) << "\n";
        return kExitFailure;
      }
    }
    if (std::rename(tmp.c_str(), golden_path.c_str()) != 0) {
      err << "promrelay test-rules: cannot rename " << tmp << " to "
          << golden_path << ": " << std::strerror(errno) << "\n";
      std::remove(tmp.c_str());
      return kExitFailure;
    }
    out << "updated " << golden_path << ": " << results.size() << " series, "
        << differing << " changed\n";
    return kExitOk;
  }
  if (differing == 0) {
    out << "golden OK: " << results.size() << " series match " << golden_path
        << "\n";
    return kExitOk;
  }
  out << "--- " << golden_path << " (golden)\n+++ " << input_name << " through "
      << config_path << "\n"
      << diff.str();
  out << "FAIL: " << differing << " of "
      << std::max(results.size(), golden.size()) << " series differ from "
      << golden_path
      << " (check the diff; if the change is intended, re-run with --update)\n";
  return kExitFailure;
}

}  // namespace promrelay::cli
