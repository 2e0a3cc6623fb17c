// The strict YAML loader: walks the yaml-cpp node tree of one config file,
// checks every key against the schema and collects every error with its line
// and field path. yaml-cpp throws; every call into it is confined to this file
// and its exceptions are caught here.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/relabel/relabel.h"

namespace promrelay::config {

std::string ConfigError::ToString() const {
  std::string out;
  if (line > 0) absl::StrAppend(&out, line, ":", column, ": ");
  if (!field.empty()) absl::StrAppend(&out, field, ": ");
  absl::StrAppend(&out, message);
  return out;
}

namespace {

namespace fs = std::filesystem;

struct Pos {
  int line = 0;
  int column = 0;
};

// Secrets larger than this are surely the wrong file.
constexpr uintmax_t kMaxSecretFileBytes = 64 * 1024;

bool LabelNameOk(absl::string_view s, relabel::NameScheme scheme) {
  return relabel::IsValidLabelName(std::string_view(s.data(), s.size()),
                                   scheme);
}

std::string LabelNameRule(relabel::NameScheme scheme) {
  return scheme == relabel::NameScheme::kLegacy
             ? "[a-zA-Z_][a-zA-Z0-9_]* (metric_name_validation_scheme: legacy)"
             : "non-empty UTF-8";
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub =
          prev[j - 1] +
          (absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]) ? 0
                                                                          : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

std::string KindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

std::string ChildPath(absl::string_view parent, absl::string_view key) {
  if (parent.empty()) return std::string(key);
  return absl::StrCat(parent, ".", key);
}

std::string IndexPath(absl::string_view parent, size_t i) {
  return absl::StrCat(parent, "[", i, "]");
}

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  Pos key_pos;
  Pos value_pos;  // the key's position when the value is null
};

// One YAML mapping after its keys were checked against the schema.
class MapView {
 public:
  bool valid = false;  // a mapping (or null, which reads as empty)
  std::string path;
  Pos pos;
  std::vector<Entry> entries;

  const Entry* Find(absl::string_view key) const {
    for (const Entry& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
  bool Has(absl::string_view key) const { return Find(key) != nullptr; }
  std::string Child(absl::string_view key) const {
    return ChildPath(path, key);
  }
};

// Keys Prometheus users paste that promrelay deliberately lacks.
const std::map<std::string, std::string, std::less<>>& KnownKeyHints() {
  static const auto* hints = new std::map<std::string, std::string,
                                          std::less<>>{
      {"authorization", "use bearer_token or bearer_token_file"},
      {"oauth2", "OAuth2 is not supported"},
      {"sigv4", "SigV4 is not supported"},
      {"azuread", "Azure AD auth is not supported"},
      {"google_iam", "Google IAM auth is not supported"},
      {"send_exemplars",
       "exemplars are always forwarded unchanged; remove the key"},
      {"send_native_histograms",
       "native histograms are always forwarded unchanged; remove the key"},
      {"metadata_config", "metadata is forwarded unchanged; remove the key"},
      {"proxy_url", "HTTP proxies are not supported"},
      {"no_proxy", "HTTP proxies are not supported"},
      {"proxy_from_environment", "HTTP proxies are not supported"},
      {"protobuf_message", "promrelay sends remote write 1.0"},
      {"follow_redirects", "redirects are not followed"},
      {"enable_http2", "not configurable"},
      {"round_robin_dns", "not supported"},
      {"min_shards", "promrelay's shard count is fixed: use shards"},
      {"max_shards", "promrelay's shard count is fixed: use shards"},
      {"capacity",
       "use queue_config.max_memory_bytes or storage.max_bytes to bound a "
       "queue"},
      {"max_retries",
       "retries continue until the sample is delivered or "
       "dropped by a full queue"},
      {"sample_age_limit", "not supported"},
      {"scrape_interval", "promrelay does not scrape"},
      {"scrape_configs", "promrelay does not scrape"},
      {"external_labels",
       "not supported: add labels with relabel_configs or "
       "server.clients[].inject_labels"},
      {"write_relabel_configs",
       "write_relabel_configs belong in a remote_write entry; the global list "
       "is relabel_configs"},
  };
  return *hints;
}

class Loader {
 public:
  Loader(absl::string_view text, std::string source_path,
         const LoadOptions& options, std::vector<ConfigError>* errors)
      : text_(text),
        source_path_(std::move(source_path)),
        options_(options),
        errors_(errors) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text_.size(); ++i) {
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
    }
    fs::path p(source_path_);
    base_dir_ = p.has_parent_path() ? p.parent_path() : fs::path(".");
  }

  std::unique_ptr<Config> Load() {
    auto config = std::make_unique<Config>();
    config->source_path = source_path_;
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(std::string(text_));
    } catch (const YAML::Exception& e) {
      Error(Pos{e.mark.line + 1, e.mark.column + 1}, "",
            absl::StrCat("YAML syntax error: ", e.msg));
      return nullptr;
    }
    if (docs.size() > 1) {
      Error(Pos{1, 1}, "",
            "the file holds several YAML documents (---); want one");
      return nullptr;
    }
    YAML::Node root = docs.empty() ? YAML::Node() : docs[0];
    try {
      LoadRoot(root, config.get());
    } catch (const YAML::Exception& e) {
      // The walk only reads nodes that exist; this is a safety net.
      Error(Pos{e.mark.line + 1, e.mark.column + 1}, "",
            absl::StrCat("YAML error: ", e.msg));
    }
    return config;
  }

 private:
  void Error(Pos pos, std::string field, std::string message) {
    errors_->push_back(ConfigError{pos.line, pos.column, std::move(field),
                                   std::move(message)});
  }

  Pos PosOfOffset(size_t offset) const {
    auto it =
        std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = it - line_starts_.begin();  // 1-based
    return Pos{static_cast<int>(line),
               static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  Pos PosOf(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    if (m.line < 0) return Pos{0, 0};
    return Pos{m.line + 1, m.column + 1};
  }

  // yaml-cpp marks a null list entry (a bare "-") at the next token; point at
  // its dash instead.
  Pos PosOfNullItem(const YAML::Node& n, Pos fallback) const {
    YAML::Mark m = n.Mark();
    if (m.pos < 0 || static_cast<size_t>(m.pos) > text_.size()) {
      return fallback;
    }
    size_t i = m.pos;
    while (i > 0) {
      char c = text_[i - 1];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        --i;
        continue;
      }
      if (c == '-') return PosOfOffset(i - 1);
      break;
    }
    return fallback;
  }

  // Checks that `node` is a mapping (null reads as empty) whose keys are all
  // in `allowed`, reporting unknown and duplicate keys. YAML merge keys
  // (`<<: *anchor`) are expanded since yaml-cpp leaves them to the reader.
  MapView ReadMap(const YAML::Node& node, std::string path, Pos fallback,
                  std::initializer_list<absl::string_view> allowed) {
    MapView view;
    view.path = std::move(path);
    // Missing keys are reported at the key that opened this mapping.
    view.pos = fallback;
    if (!node.IsDefined() || node.IsNull()) {
      view.valid = true;
      return view;
    }
    if (!node.IsMap()) {
      Error(PosOf(node), view.path,
            absl::StrCat("expected a mapping, got ", KindName(node)));
      return view;
    }
    view.valid = true;
    std::vector<std::pair<YAML::Node, YAML::Node>> merged;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies: yaml-cpp iterators hand out a temporary proxy.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      Pos key_pos = PosOf(key);
      if (!key.IsScalar()) {
        Error(key_pos, view.path,
              absl::StrCat("a key must be a string, got ", KindName(key)));
        continue;
      }
      if (key.Scalar() == "<<" && key.Tag() == "?") {
        if (value.IsMap()) {
          for (auto m = value.begin(); m != value.end(); ++m) {
            merged.emplace_back(m->first, m->second);
          }
        } else if (value.IsSequence()) {
          for (const YAML::Node& item : value) {
            if (!item.IsMap()) continue;
            for (auto m = item.begin(); m != item.end(); ++m) {
              merged.emplace_back(m->first, m->second);
            }
          }
        } else {
          Error(key_pos, view.path,
                "a merge key (<<) needs a mapping or a list of mappings");
        }
        continue;
      }
      AddEntry(view, key, value, allowed, /*from_merge=*/false);
    }
    for (auto& [key, value] : merged) {
      if (!key.IsScalar() || view.Has(key.Scalar())) continue;
      AddEntry(view, key, value, allowed, /*from_merge=*/true);
    }
    return view;
  }

  void AddEntry(MapView& view, const YAML::Node& key, const YAML::Node& value,
                std::initializer_list<absl::string_view> allowed,
                bool from_merge) {
    Pos key_pos = PosOf(key);
    std::string name = key.Scalar();
    bool known =
        std::find(allowed.begin(), allowed.end(), name) != allowed.end();
    if (!known) {
      std::string msg = absl::StrCat("unknown key ", Quote(name));
      absl::string_view best;
      size_t best_distance = 3;
      for (absl::string_view candidate : allowed) {
        size_t d = EditDistance(name, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!best.empty()) {
        absl::StrAppend(&msg, " (did you mean \"", best, "\"?)");
      } else {
        auto hint = KnownKeyHints().find(name);
        if (hint != KnownKeyHints().end()) {
          absl::StrAppend(&msg, ": ", hint->second);
        } else {
          absl::StrAppend(&msg, "; valid keys: ", absl::StrJoin(allowed, ", "));
        }
      }
      Error(key_pos, view.path, msg);
      return;
    }
    if (!from_merge && view.Has(name)) {
      Error(key_pos, view.Child(name), "duplicate key");
      return;
    }
    Entry e;
    e.key = name;
    e.key_node = key;
    e.value = value;
    e.key_pos = key_pos;
    e.value_pos = value.IsNull() ? key_pos : PosOf(value);
    view.entries.push_back(std::move(e));
  }

  // The string value of a scalar; a null is "". Reports other kinds.
  std::optional<std::string> ScalarText(const Entry& e,
                                        const std::string& field, bool expand) {
    if (e.value.IsNull()) return std::string();
    if (!e.value.IsScalar()) {
      Error(e.value_pos, field,
            absl::StrCat("expected a string, got ", KindName(e.value)));
      return std::nullopt;
    }
    if (!expand) return e.value.Scalar();
    absl::StatusOr<std::string> expanded = ExpandEnv(e.value.Scalar());
    if (!expanded.ok()) {
      Error(e.value_pos, field, std::string(expanded.status().message()));
      return std::nullopt;
    }
    return *std::move(expanded);
  }

  // A typed scalar must have a value: `shards:` alone is a mistake, not 0.
  std::optional<std::string> TypedText(const MapView& m, absl::string_view key,
                                       const Entry** entry) {
    const Entry* e = m.Find(key);
    *entry = e;
    if (e == nullptr) return std::nullopt;
    if (e->value.IsNull()) {
      Error(e->value_pos, m.Child(key),
            "has no value (remove the key to get the default)");
      return std::nullopt;
    }
    return ScalarText(*e, m.Child(key), /*expand=*/true);
  }

  bool GetString(const MapView& m, absl::string_view key, std::string* out,
                 bool expand = true) {
    const Entry* e = m.Find(key);
    if (e == nullptr) return false;
    std::optional<std::string> text = ScalarText(*e, m.Child(key), expand);
    if (!text) return false;
    *out = *std::move(text);
    return true;
  }

  bool GetDuration(const MapView& m, absl::string_view key, absl::Duration* out,
                   bool allow_zero) {
    const Entry* e;
    std::optional<std::string> text = TypedText(m, key, &e);
    if (!text) return false;
    absl::StatusOr<absl::Duration> d = ParseDuration(*text);
    if (!d.ok()) {
      Error(e->value_pos, m.Child(key), std::string(d.status().message()));
      return false;
    }
    if (!allow_zero && *d == absl::ZeroDuration()) {
      Error(e->value_pos, m.Child(key), "must be greater than 0");
      return false;
    }
    *out = *d;
    return true;
  }

  bool GetBytes(const MapView& m, absl::string_view key, uint64_t* out) {
    const Entry* e;
    std::optional<std::string> text = TypedText(m, key, &e);
    if (!text) return false;
    absl::StatusOr<uint64_t> n = ParseByteSize(*text);
    if (!n.ok()) {
      Error(e->value_pos, m.Child(key), std::string(n.status().message()));
      return false;
    }
    if (*n == 0) {
      Error(e->value_pos, m.Child(key), "must be greater than 0");
      return false;
    }
    *out = *n;
    return true;
  }

  bool GetUint(const MapView& m, absl::string_view key, uint64_t* out,
               uint64_t min, uint64_t max) {
    const Entry* e;
    std::optional<std::string> text = TypedText(m, key, &e);
    if (!text) return false;
    uint64_t n = 0;
    bool ok = !text->empty();
    for (char c : *text) {
      if (c < '0' || c > '9' || n > (UINT64_MAX - (c - '0')) / 10) {
        ok = false;
        break;
      }
      n = n * 10 + (c - '0');
    }
    if (!ok) {
      Error(e->value_pos, m.Child(key),
            absl::StrCat(Quote(*text), " is not a non-negative integer"));
      return false;
    }
    if (n < min || n > max) {
      Error(e->value_pos, m.Child(key),
            absl::StrCat("must be between ", min, " and ", max, ", got ", n));
      return false;
    }
    *out = n;
    return true;
  }

  bool GetInt(const MapView& m, absl::string_view key, int* out, int min,
              int max) {
    uint64_t n;
    if (!GetUint(m, key, &n, static_cast<uint64_t>(min),
                 static_cast<uint64_t>(max))) {
      return false;
    }
    *out = static_cast<int>(n);
    return true;
  }

  bool GetBool(const MapView& m, absl::string_view key, bool* out) {
    const Entry* e;
    std::optional<std::string> text = TypedText(m, key, &e);
    if (!text) return false;
    std::string lower = absl::AsciiStrToLower(*text);
    if (lower == "true") {
      *out = true;
    } else if (lower == "false") {
      *out = false;
    } else {
      Error(e->value_pos, m.Child(key),
            absl::StrCat("want true or false, got ", Quote(*text)));
      return false;
    }
    return true;
  }

  // Returns the index of the value in `choices`, or -1.
  int GetEnum(const MapView& m, absl::string_view key,
              std::initializer_list<absl::string_view> choices) {
    const Entry* e;
    std::optional<std::string> text = TypedText(m, key, &e);
    if (!text) return -1;
    int i = 0;
    for (absl::string_view c : choices) {
      if (*text == c) return i;
      ++i;
    }
    Error(e->value_pos, m.Child(key),
          absl::StrCat("want one of ", absl::StrJoin(choices, ", "), "; got ",
                       Quote(*text)));
    return -1;
  }

  // A list of strings; null is an empty list.
  bool GetStringList(const MapView& m, absl::string_view key,
                     std::vector<std::string>* out, std::vector<Pos>* positions,
                     bool expand) {
    const Entry* e = m.Find(key);
    if (e == nullptr) return false;
    out->clear();
    if (e->value.IsNull()) return true;
    if (!e->value.IsSequence()) {
      Error(e->value_pos, m.Child(key),
            absl::StrCat("expected a list, got ", KindName(e->value)));
      return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const YAML::Node& item : e->value) {
      std::string field = IndexPath(m.Child(key), i++);
      Pos pos = item.IsNull() ? PosOfNullItem(item, e->value_pos) : PosOf(item);
      Entry fake{"", YAML::Node(), item, pos, pos};
      std::optional<std::string> text = ScalarText(fake, field, expand);
      if (!text) {
        ok = false;
        continue;
      }
      out->push_back(*std::move(text));
      if (positions) positions->push_back(pos);
    }
    return ok;
  }

  // A mapping of strings to strings; null is empty.
  bool GetStringMap(const MapView& m, absl::string_view key,
                    std::map<std::string, std::string>* out,
                    std::map<std::string, Pos>* key_positions, bool secret) {
    const Entry* e = m.Find(key);
    if (e == nullptr) return false;
    if (e->value.IsNull()) return true;
    if (!e->value.IsMap()) {
      Error(e->value_pos, m.Child(key),
            absl::StrCat("expected a mapping, got ", KindName(e->value)));
      return false;
    }
    for (auto it = e->value.begin(); it != e->value.end(); ++it) {
      Pos kpos = PosOf(it->first);
      if (!it->first.IsScalar()) {
        Error(kpos, m.Child(key), "a key must be a string");
        continue;
      }
      std::string name = it->first.Scalar();
      std::string field = ChildPath(m.Child(key), name);
      if (out->count(name)) {
        Error(kpos, field, "duplicate key");
        continue;
      }
      Entry value{name, it->first, it->second, kpos,
                  it->second.IsNull() ? kpos : PosOf(it->second)};
      std::optional<std::string> text = ScalarText(value, field, true);
      if (!text) continue;  // reported; the other entries are still checked
      (void)secret;
      (*out)[name] = *std::move(text);
      if (key_positions) (*key_positions)[name] = kpos;
    }
    // Entries read are in *out even when others failed, so callers check them.
    return true;
  }

  fs::path Resolve(const std::string& path) const {
    fs::path p(path);
    if (p.is_relative()) p = base_dir_ / p;
    std::error_code ec;
    fs::path abs = fs::absolute(p, ec);
    return (ec ? p : abs).lexically_normal();
  }

  // Reads a secret file; the error names the file, never its contents.
  std::optional<std::string> ReadSecretFile(const Entry& e,
                                            const std::string& field,
                                            const std::string& path) {
    fs::path p = Resolve(path);
    std::error_code ec;
    uintmax_t size = fs::file_size(p, ec);
    if (ec) {
      Error(
          e.value_pos, field,
          absl::StrCat("cannot read ", Quote(p.string()), ": ", ec.message()));
      return std::nullopt;
    }
    if (size > kMaxSecretFileBytes) {
      Error(e.value_pos, field,
            absl::StrCat(Quote(p.string()),
                         " is larger than 64 KiB; is it "
                         "the right file?"));
      return std::nullopt;
    }
    std::ifstream in(p, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    if (!in) {
      Error(e.value_pos, field,
            absl::StrCat("cannot read ", Quote(p.string()), ": ",
                         std::strerror(errno)));
      return std::nullopt;
    }
    // Kubernetes Secrets and `echo > file` leave a trailing newline.
    std::string text(absl::StripAsciiWhitespace(buf.str()));
    if (text.empty()) {
      Error(e.value_pos, field, absl::StrCat(Quote(p.string()), " is empty"));
      return std::nullopt;
    }
    return text;
  }

  // Reads `value_key` or `file_key` (exclusive) into *value; *file gets the
  // absolute file path. Returns true when either was given.
  bool GetSecret(const MapView& m, absl::string_view value_key,
                 absl::string_view file_key, std::string* value,
                 std::string* file) {
    const Entry* v = m.Find(value_key);
    const Entry* f = m.Find(file_key);
    if (v && f) {
      const Entry* later = v->key_pos.line > f->key_pos.line ||
                                   (v->key_pos.line == f->key_pos.line &&
                                    v->key_pos.column > f->key_pos.column)
                               ? v
                               : f;
      Error(later->key_pos, m.Child(later->key),
            absl::StrCat(value_key, " and ", file_key,
                         " are mutually exclusive"));
      return true;
    }
    if (v) {
      GetString(m, value_key, value);
      return true;
    }
    if (f) {
      std::string path;
      if (!GetString(m, file_key, &path)) return true;
      if (path.empty()) {
        Error(f->value_pos, m.Child(file_key), "must not be empty");
        return true;
      }
      *file = Resolve(path).string();
      if (options_.read_files) {
        std::optional<std::string> secret =
            ReadSecretFile(*f, m.Child(file_key), path);
        if (secret) *value = *std::move(secret);
      }
      return true;
    }
    return false;
  }

  // A TLS file path: resolved, and checked to be readable.
  void GetFile(const MapView& m, absl::string_view key, std::string* out) {
    std::string path;
    if (!GetString(m, key, &path)) return;
    const Entry* e = m.Find(key);
    if (path.empty()) {
      Error(e->value_pos, m.Child(key), "must not be empty");
      return;
    }
    fs::path p = Resolve(path);
    *out = p.string();
    if (!options_.read_files) return;
    std::ifstream in(p);
    if (!in) {
      Error(e->value_pos, m.Child(key),
            absl::StrCat("cannot read ", Quote(p.string()), ": ",
                         std::strerror(errno)));
    }
  }

  // ---- relabel rules ----

  struct RuleMeta {
    Pos pos;
    std::map<std::string, Pos> key_pos;
    bool parse_failed = false;
  };

  void LoadRules(const MapView& parent, absl::string_view key,
                 relabel::RuleSet* out) {
    const Entry* e = parent.Find(key);
    if (e == nullptr || e->value.IsNull()) return;
    std::string path = parent.Child(key);
    if (!e->value.IsSequence()) {
      Error(e->value_pos, path,
            absl::StrCat("expected a list of relabel rules, got ",
                         KindName(e->value)));
      return;
    }
    std::vector<relabel::RuleSpec> specs;
    std::vector<RuleMeta> metas;
    bool any_failed = false;
    size_t i = 0;
    for (const YAML::Node& item : e->value) {
      std::string rule_path = IndexPath(path, i++);
      RuleMeta meta;
      relabel::RuleSpec spec;
      if (item.IsNull()) {
        Error(PosOfNullItem(item, e->value_pos), rule_path,
              "empty relabel rule (a bare \"-\")");
        any_failed = true;
        continue;
      }
      if (!item.IsMap()) {
        Error(PosOf(item), rule_path,
              absl::StrCat("a relabel rule must be a mapping, got ",
                           KindName(item)));
        any_failed = true;
        continue;
      }
      size_t before = errors_->size();
      ParseRule(item, rule_path, &spec, &meta);
      if (errors_->size() != before) {
        any_failed = true;
        continue;
      }
      absl::Status st = relabel::ValidateRule(spec, scheme_);
      if (!st.ok()) {
        ReportRuleError(rule_path, meta, st.message());
        any_failed = true;
        continue;
      }
      specs.push_back(std::move(spec));
      metas.push_back(std::move(meta));
    }
    if (any_failed) return;
    absl::StatusOr<relabel::RuleSet> set =
        relabel::RuleSet::Compile(specs, scheme_);
    if (!set.ok()) {
      // "[N].<key>: <why>"; ValidateRule passed, so this is unexpected.
      absl::string_view msg = set.status().message();
      size_t index = 0;
      if (absl::ConsumePrefix(&msg, "[")) {
        size_t close = msg.find(']');
        if (close != absl::string_view::npos) {
          index = std::strtoul(std::string(msg.substr(0, close)).c_str(),
                               nullptr, 10);
          msg.remove_prefix(close + 1);
          absl::ConsumePrefix(&msg, ".");
        }
      }
      if (index >= metas.size()) index = 0;
      ReportRuleError(
          IndexPath(path, index),
          metas.empty() ? RuleMeta{e->value_pos, {}, false} : metas[index],
          msg);
      return;
    }
    *out = *std::move(set);
  }

  void ReportRuleError(const std::string& rule_path, const RuleMeta& meta,
                       absl::string_view message) {
    // "<key>: <why>" (the key may carry an index: "source_labels[1]").
    size_t colon = message.find(": ");
    if (colon != absl::string_view::npos) {
      std::string key(message.substr(0, colon));
      std::string base = key.substr(0, key.find('['));
      auto it = meta.key_pos.find(base);
      static const std::set<std::string> kRuleKeys = {
          "source_labels", "separator",   "regex", "modulus",
          "target_label",  "replacement", "action"};
      if (kRuleKeys.count(base)) {
        Pos pos = it != meta.key_pos.end() ? it->second : meta.pos;
        Error(pos, ChildPath(rule_path, key),
              std::string(message.substr(colon + 2)));
        return;
      }
    }
    Error(meta.pos, rule_path, std::string(message));
  }

  void ParseRule(const YAML::Node& node, const std::string& path,
                 relabel::RuleSpec* spec, RuleMeta* meta) {
    MapView m = ReadMap(node, path, PosOf(node),
                        {"source_labels", "separator", "regex", "modulus",
                         "target_label", "replacement", "action"});
    meta->pos = m.pos;
    for (const Entry& e : m.entries) meta->key_pos[e.key] = e.value_pos;
    // Nothing is env-expanded here: `$` is the template syntax.
    std::vector<std::string> sources;
    std::vector<Pos> source_pos;
    if (m.Has("source_labels")) {
      if (GetStringList(m, "source_labels", &sources, &source_pos,
                        /*expand=*/false)) {
        for (size_t i = 0; i < sources.size(); ++i) {
          if (!LabelNameOk(sources[i], scheme_)) {
            Error(source_pos[i], IndexPath(m.Child("source_labels"), i),
                  absl::StrCat(Quote(sources[i]),
                               " is not a valid label name (want ",
                               LabelNameRule(scheme_), ")"));
          }
        }
        spec->source_labels = std::move(sources);
      }
    }
    std::string s;
    // A null value is the field's zero value: "" (not the default).
    if (GetString(m, "separator", &s, false)) spec->separator = s;
    if (GetString(m, "regex", &s, false)) spec->regex = s;
    if (GetString(m, "target_label", &s, false)) spec->target_label = s;
    if (GetString(m, "replacement", &s, false)) spec->replacement = s;
    if (const Entry* e = m.Find("modulus")) {
      if (e->value.IsNull()) {
        spec->modulus = 0;
      } else {
        uint64_t n;
        if (GetUint(m, "modulus", &n, 0, UINT64_MAX)) spec->modulus = n;
      }
    }
    if (const Entry* e = m.Find("action")) {
      if (e->value.IsNull()) {
        spec->action_null = true;
      } else if (GetString(m, "action", &s, false)) {
        spec->action = s;
      }
    }
  }

  // ---- sections ----

  void LoadRoot(const YAML::Node& root, Config* config) {
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
      Error(PosOf(root), "",
            absl::StrCat("the config must be a mapping, got ", KindName(root)));
      return;
    }
    MapView top =
        ReadMap(root, "", Pos{1, 1},
                {"server", "global", "relabel_configs", "remote_write"});
    // The name scheme decides rule validation, so read it first.
    if (const Entry* g = top.Find("global")) {
      MapView global = ReadMap(g->value, "global", g->key_pos,
                               {"metric_name_validation_scheme"});
      int scheme =
          GetEnum(global, "metric_name_validation_scheme", {"utf8", "legacy"});
      if (scheme == 1) scheme_ = relabel::NameScheme::kLegacy;
    }
    config->name_scheme = scheme_;
    if (const Entry* s = top.Find("server")) {
      LoadServer(s->value, s->value_pos, &config->server);
    }
    LoadRules(top, "relabel_configs", &config->relabel_configs);
    const Entry* rw = top.Find("remote_write");
    if (rw == nullptr || rw->value.IsNull() ||
        (rw->value.IsSequence() && rw->value.size() == 0)) {
      Error(rw ? rw->value_pos : Pos{1, 1}, "remote_write",
            "at least one destination is required");
      return;
    }
    if (!rw->value.IsSequence()) {
      Error(rw->value_pos, "remote_write",
            absl::StrCat("expected a list of destinations, got ",
                         KindName(rw->value)));
      return;
    }
    std::map<std::string, std::string> names;         // name -> path
    std::map<std::string, std::string> storage_dirs;  // path -> field
    size_t i = 0;
    for (const YAML::Node& item : rw->value) {
      std::string path = IndexPath("remote_write", i++);
      if (!item.IsMap()) {
        Pos pos =
            item.IsNull() ? PosOfNullItem(item, rw->value_pos) : PosOf(item);
        Error(pos, path,
              absl::StrCat("a destination must be a mapping, got ",
                           KindName(item)));
        continue;
      }
      Destination d;
      LoadDestination(item, path, &d, &names, &storage_dirs);
      config->remote_write.push_back(std::move(d));
    }
  }

  void LoadServer(const YAML::Node& node, Pos fallback, ServerConfig* s) {
    MapView m = ReadMap(
        node, "server", fallback,
        {"listen_address", "io_threads", "max_request_bytes",
         "max_decompressed_bytes", "max_series_per_request",
         "max_labels_per_series", "max_label_name_length",
         "max_label_value_length", "shutdown_timeout", "tls", "clients"});
    if (!m.valid) return;
    if (GetString(m, "listen_address", &s->listen_address)) {
      std::string why = CheckListenAddress(s->listen_address);
      if (!why.empty()) {
        Error(m.Find("listen_address")->value_pos, m.Child("listen_address"),
              why);
      }
    }
    GetInt(m, "io_threads", &s->io_threads, 0, 1024);
    GetBytes(m, "max_request_bytes", &s->max_request_bytes);
    GetBytes(m, "max_decompressed_bytes", &s->max_decompressed_bytes);
    GetUint(m, "max_series_per_request", &s->max_series_per_request, 1,
            UINT32_MAX);
    GetUint(m, "max_labels_per_series", &s->max_labels_per_series, 1,
            UINT32_MAX);
    GetUint(m, "max_label_name_length", &s->max_label_name_length, 1,
            UINT32_MAX);
    GetUint(m, "max_label_value_length", &s->max_label_value_length, 1,
            UINT32_MAX);
    GetDuration(m, "shutdown_timeout", &s->shutdown_timeout,
                /*allow_zero=*/true);
    if (const Entry* t = m.Find("tls")) {
      MapView tls = ReadMap(t->value, m.Child("tls"), t->key_pos,
                            {"cert_file", "key_file"});
      if (tls.valid && !t->value.IsNull()) {
        ServerTls out;
        GetFile(tls, "cert_file", &out.cert_file);
        GetFile(tls, "key_file", &out.key_file);
        if (!tls.Has("cert_file")) {
          Error(tls.pos, tls.Child("cert_file"),
                "required when server.tls is set");
        }
        if (!tls.Has("key_file")) {
          Error(tls.pos, tls.Child("key_file"),
                "required when server.tls is set");
        }
        s->tls = std::move(out);
      }
    }
    if (const Entry* c = m.Find("clients")) {
      LoadClients(*c, m.Child("clients"), &s->clients);
    }
  }

  static std::string CheckListenAddress(absl::string_view addr) {
    size_t colon = addr.rfind(':');
    if (colon == absl::string_view::npos) {
      return "want host:port (e.g. 0.0.0.0:9201 or :9201)";
    }
    absl::string_view host = addr.substr(0, colon);
    absl::string_view port = addr.substr(colon + 1);
    if (absl::StartsWith(host, "[") != absl::EndsWith(host, "]")) {
      return "unbalanced [ ] around an IPv6 address";
    }
    if (!absl::StartsWith(host, "[") &&
        host.find(':') != absl::string_view::npos) {
      return "an IPv6 address needs brackets: [::]:9201";
    }
    if (port.empty() || port.size() > 5) return "want a port number 0-65535";
    int n = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return "want a port number 0-65535";
      n = n * 10 + (c - '0');
    }
    if (n > 65535) return "want a port number 0-65535";
    return "";
  }

  void LoadClients(const Entry& e, const std::string& path,
                   std::vector<ClientAuth>* out) {
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
      Error(
          e.value_pos, path,
          absl::StrCat("expected a list of clients, got ", KindName(e.value)));
      return;
    }
    std::map<std::string, std::string> names;
    // Credentials identify the client, so two clients may not share them.
    // Keyed by the secret; only paths are ever printed.
    std::map<std::string, std::string> credentials;
    size_t i = 0;
    for (const YAML::Node& item : e.value) {
      std::string cpath = IndexPath(path, i++);
      if (!item.IsMap()) {
        Pos pos =
            item.IsNull() ? PosOfNullItem(item, e.value_pos) : PosOf(item);
        Error(pos, cpath,
              absl::StrCat("a client must be a mapping, got ", KindName(item)));
        continue;
      }
      MapView m = ReadMap(item, cpath, PosOf(item),
                          {"name", "bearer_token", "bearer_token_file",
                           "basic_auth", "inject_labels"});
      ClientAuth c;
      bool name_read = GetString(m, "name", &c.name);
      if (!m.Has("name") || (name_read && c.name.empty())) {
        Error(m.Has("name") ? m.Find("name")->value_pos : m.pos,
              m.Child("name"), "required (non-empty)");
      } else if (!name_read) {
        // reported by GetString
      } else if (auto [it, fresh] = names.emplace(c.name, cpath); !fresh) {
        Error(m.Find("name")->value_pos, m.Child("name"),
              absl::StrCat("duplicate client name ", Quote(c.name), " (also ",
                           it->second, ")"));
      }
      bool bearer = GetSecret(m, "bearer_token", "bearer_token_file",
                              &c.bearer_token, &c.bearer_token_file);
      bool basic = false;
      if (const Entry* b = m.Find("basic_auth")) {
        basic = true;
        LoadBasicAuth(*b, m.Child("basic_auth"), &c.username, &c.password,
                      &c.password_file);
      }
      if (bearer && basic) {
        const Entry* be = m.Find("bearer_token") ? m.Find("bearer_token")
                                                 : m.Find("bearer_token_file");
        Error(be->key_pos, m.Child(be->key),
              "basic_auth and bearer_token are mutually exclusive");
      } else if (!bearer && !basic) {
        Error(m.pos, cpath,
              "a client needs bearer_token, bearer_token_file or basic_auth");
      } else if (options_.read_files) {
        std::string key =
            bearer ? absl::StrCat("bearer\n", c.bearer_token)
                   : absl::StrCat("basic\n", c.username, "\n", c.password);
        if (!(bearer ? c.bearer_token : c.username).empty()) {
          auto [it, fresh] = credentials.emplace(key, cpath);
          if (!fresh) {
            Error(m.pos, cpath,
                  absl::StrCat("uses the same credentials as ", it->second));
          }
        }
      }
      std::map<std::string, Pos> label_pos;
      if (GetStringMap(m, "inject_labels", &c.inject_labels, &label_pos,
                       false)) {
        for (const auto& [name, value] : c.inject_labels) {
          if (!LabelNameOk(name, scheme_)) {
            Error(label_pos[name], ChildPath(m.Child("inject_labels"), name),
                  absl::StrCat(Quote(name), " is not a valid label name (want ",
                               LabelNameRule(scheme_), ")"));
          }
        }
      }
      out->push_back(std::move(c));
    }
  }

  void LoadBasicAuth(const Entry& e, const std::string& path,
                     std::string* username, std::string* password,
                     std::string* password_file) {
    if (!e.value.IsMap()) {
      Error(e.value_pos, path,
            absl::StrCat("expected a mapping with username and password, got ",
                         KindName(e.value)));
      return;
    }
    MapView m = ReadMap(e.value, path, e.key_pos,
                        {"username", "password", "password_file"});
    bool read = GetString(m, "username", username);
    if (!m.Has("username") || (read && username->empty())) {
      Error(m.Has("username") ? m.Find("username")->value_pos : m.pos,
            m.Child("username"), "required (non-empty)");
    }
    GetSecret(m, "password", "password_file", password, password_file);
  }

  static std::string CheckUrl(absl::string_view url) {
    absl::string_view rest = url;
    if (!absl::ConsumePrefix(&rest, "http://") &&
        !absl::ConsumePrefix(&rest, "https://")) {
      return "must start with http:// or https://";
    }
    size_t end = rest.find_first_of("/?#");
    absl::string_view authority = rest.substr(0, end);
    if (authority.find('@') != absl::string_view::npos) {
      // URLs end up in logs; credentials belong in basic_auth.
      return "must not carry credentials (user:password@); use basic_auth";
    }
    absl::string_view host = authority;
    if (absl::StartsWith(authority, "[")) {
      size_t close = authority.find(']');
      if (close == absl::string_view::npos) return "unbalanced [ in the host";
      host = authority.substr(0, close + 1);
      absl::string_view after = authority.substr(close + 1);
      if (!after.empty() && !absl::StartsWith(after, ":")) {
        return "bad port after the IPv6 host";
      }
      authority = after.empty() ? after : after.substr(0);
    } else {
      size_t colon = authority.find(':');
      host = authority.substr(0, colon);
      authority = colon == absl::string_view::npos ? absl::string_view()
                                                   : authority.substr(colon);
    }
    if (host.empty() || host == "[]") return "has no host";
    for (char c : host) {
      if (c == ' ' || c == '\t' || static_cast<unsigned char>(c) < 0x20) {
        return "the host contains whitespace or control characters";
      }
    }
    if (absl::ConsumePrefix(&authority, ":")) {
      if (authority.empty() || authority.size() > 5) {
        return "the port must be a number 1-65535";
      }
      int n = 0;
      for (char c : authority) {
        if (c < '0' || c > '9') return "the port must be a number 1-65535";
        n = n * 10 + (c - '0');
      }
      if (n < 1 || n > 65535) return "the port must be a number 1-65535";
    }
    for (char c : url) {
      if (c == ' ' || static_cast<unsigned char>(c) < 0x20) {
        return "contains whitespace or control characters";
      }
    }
    return "";
  }

  static bool IsHeaderToken(absl::string_view name) {
    if (name.empty()) return false;
    for (char c : name) {
      if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
      if (absl::string_view("!#$%&'*+-.^_`|~").find(c) ==
          absl::string_view::npos) {
        return false;
      }
    }
    return true;
  }

  void LoadDestination(const YAML::Node& node, const std::string& path,
                       Destination* d,
                       std::map<std::string, std::string>* names,
                       std::map<std::string, std::string>* storage_dirs) {
    MapView m = ReadMap(
        node, path, PosOf(node),
        {"name", "url", "basic_auth", "bearer_token", "bearer_token_file",
         "headers", "tls_config", "remote_timeout", "write_relabel_configs",
         "forbidden_labels", "queue_config", "storage"});
    if (!m.valid) return;
    // name
    if (!m.Has("name")) {
      Error(m.pos, m.Child("name"), "required");
    } else if (GetString(m, "name", &d->name)) {
      const Entry* e = m.Find("name");
      bool ok = !d->name.empty();
      for (char c : d->name) {
        ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                    c == '_' || c == '-');
      }
      if (!ok) {
        Error(e->value_pos, m.Child("name"),
              absl::StrCat(Quote(d->name),
                           " is not a valid destination name (want "
                           "[a-zA-Z0-9_-]+)"));
      } else if (auto [it, fresh] = names->emplace(d->name, path); !fresh) {
        Error(e->value_pos, m.Child("name"),
              absl::StrCat("duplicate destination name ", Quote(d->name),
                           " (also ", it->second, ")"));
      }
    }
    // url
    if (!m.Has("url")) {
      Error(m.pos, m.Child("url"), "required");
    } else if (GetString(m, "url", &d->url)) {
      std::string why = CheckUrl(d->url);
      if (!why.empty()) Error(m.Find("url")->value_pos, m.Child("url"), why);
    }
    // auth
    bool basic = false;
    if (const Entry* b = m.Find("basic_auth")) {
      if (!b->value.IsNull()) {
        basic = true;
        BasicAuth auth;
        LoadBasicAuth(*b, m.Child("basic_auth"), &auth.username, &auth.password,
                      &auth.password_file);
        d->basic_auth = std::move(auth);
      }
    }
    bool bearer = GetSecret(m, "bearer_token", "bearer_token_file",
                            &d->bearer_token, &d->bearer_token_file);
    if (basic && bearer) {
      const Entry* be = m.Find("bearer_token") ? m.Find("bearer_token")
                                               : m.Find("bearer_token_file");
      Error(be->key_pos, m.Child(be->key),
            "basic_auth and bearer_token are mutually exclusive");
    }
    // headers
    std::map<std::string, Pos> header_pos;
    if (GetStringMap(m, "headers", &d->headers, &header_pos, true)) {
      static const std::set<std::string> kReserved = {
          "authorization",
          "host",
          "content-encoding",
          "content-length",
          "content-type",
          "user-agent",
          "connection",
          "keep-alive",
          "proxy-authenticate",
          "proxy-authorization",
          "www-authenticate",
          "accept-encoding",
          "transfer-encoding",
          "upgrade",
          "te",
          "trailer",
          "x-prometheus-remote-write-version"};
      for (const auto& [name, value] : d->headers) {
        std::string field = ChildPath(m.Child("headers"), name);
        Pos pos = header_pos[name];
        if (!IsHeaderToken(name)) {
          Error(pos, field, "not a valid HTTP header name");
        } else if (kReserved.count(absl::AsciiStrToLower(name))) {
          std::string hint = absl::EqualsIgnoreCase(name, "authorization")
                                 ? ": use basic_auth or bearer_token"
                                 : "";
          Error(pos, field,
                absl::StrCat("header is set by promrelay and cannot be "
                             "configured",
                             hint));
        } else if (value.find_first_of(std::string("\r\n\0", 3)) !=
                   std::string::npos) {
          Error(pos, field, "the value contains a line break or NUL");
        }
      }
    }
    // tls_config
    if (const Entry* t = m.Find("tls_config")) {
      MapView tls = ReadMap(t->value, m.Child("tls_config"), t->key_pos,
                            {"ca_file", "cert_file", "key_file", "server_name",
                             "insecure_skip_verify"});
      if (tls.valid) {
        GetFile(tls, "ca_file", &d->tls_config.ca_file);
        GetFile(tls, "cert_file", &d->tls_config.cert_file);
        GetFile(tls, "key_file", &d->tls_config.key_file);
        GetString(tls, "server_name", &d->tls_config.server_name);
        GetBool(tls, "insecure_skip_verify",
                &d->tls_config.insecure_skip_verify);
        if (tls.Has("cert_file") && !tls.Has("key_file")) {
          Error(tls.Find("cert_file")->key_pos, tls.Child("cert_file"),
                "cert_file needs key_file too");
        }
        if (tls.Has("key_file") && !tls.Has("cert_file")) {
          Error(tls.Find("key_file")->key_pos, tls.Child("key_file"),
                "key_file needs cert_file too");
        }
      }
    }
    GetDuration(m, "remote_timeout", &d->remote_timeout, /*allow_zero=*/false);
    LoadRules(m, "write_relabel_configs", &d->write_relabel_configs);
    GetLabelNameList(m, "forbidden_labels", &d->forbidden_labels);
    if (const Entry* q = m.Find("queue_config")) {
      LoadQueue(*q, m.Child("queue_config"), &d->queue_config);
    }
    if (const Entry* s = m.Find("storage")) {
      if (!s->value.IsNull()) {
        StorageConfig storage;
        LoadStorage(*s, m.Child("storage"), &storage, storage_dirs);
        d->on_full = storage.on_full;
        d->storage = std::move(storage);
      }
    }
  }

  void LoadQueue(const Entry& e, const std::string& path, QueueConfig* q) {
    MapView m = ReadMap(
        e.value, path, e.key_pos,
        {"shards", "max_samples_per_send", "batch_send_deadline", "min_backoff",
         "max_backoff", "retry_on_http_429", "max_memory_bytes", "shard_by"});
    if (!m.valid) return;
    GetInt(m, "shards", &q->shards, 1, 4096);
    GetInt(m, "max_samples_per_send", &q->max_samples_per_send, 1, 10000000);
    GetDuration(m, "batch_send_deadline", &q->batch_send_deadline, false);
    bool min_ok = GetDuration(m, "min_backoff", &q->min_backoff, false);
    bool max_ok = GetDuration(m, "max_backoff", &q->max_backoff, false);
    bool min_given = m.Has("min_backoff"), max_given = m.Has("max_backoff");
    if ((min_ok || !min_given) && (max_ok || !max_given) &&
        q->min_backoff > q->max_backoff) {
      std::string key = max_given ? "max_backoff" : "min_backoff";
      Error(m.Find(key)->value_pos, m.Child(key),
            absl::StrCat("min_backoff (", DurationString(q->min_backoff),
                         ") is greater than max_backoff (",
                         DurationString(q->max_backoff), ")"));
    }
    GetBool(m, "retry_on_http_429", &q->retry_on_http_429);
    GetBytes(m, "max_memory_bytes", &q->max_memory_bytes);
    GetLabelNameList(m, "shard_by", &q->shard_by);
  }

  // A list of distinct, valid label names (forbidden_labels, shard_by).
  void GetLabelNameList(const MapView& m, absl::string_view key,
                        std::vector<std::string>* names) {
    std::vector<Pos> positions;
    if (!GetStringList(m, key, names, &positions, true)) return;
    std::set<std::string> seen;
    for (size_t i = 0; i < names->size(); ++i) {
      const std::string& name = (*names)[i];
      std::string field = IndexPath(m.Child(key), i);
      if (!LabelNameOk(name, scheme_)) {
        Error(positions[i], field,
              absl::StrCat(Quote(name), " is not a valid label name (want ",
                           LabelNameRule(scheme_), ")"));
      } else if (!seen.insert(name).second) {
        Error(positions[i], field,
              absl::StrCat("duplicate label ", Quote(name)));
      }
    }
  }

  void LoadStorage(const Entry& e, const std::string& path, StorageConfig* s,
                   std::map<std::string, std::string>* storage_dirs) {
    MapView m = ReadMap(e.value, path, e.key_pos,
                        {"path", "max_bytes", "on_full", "fsync",
                         "fsync_interval", "segment_bytes"});
    if (!m.valid) return;
    std::string dir;
    if (!m.Has("path")) {
      Error(m.pos, m.Child("path"), "required when storage is set");
    } else if (GetString(m, "path", &dir)) {
      const Entry* pe = m.Find("path");
      if (dir.empty()) {
        Error(pe->value_pos, m.Child("path"), "must not be empty");
      } else {
        s->path = Resolve(dir).string();
        auto [it, fresh] = storage_dirs->emplace(s->path, m.Child("path"));
        if (!fresh) {
          Error(pe->value_pos, m.Child("path"),
                absl::StrCat("two destinations cannot share a queue "
                             "directory (also ",
                             it->second, ")"));
        }
      }
    }
    GetBytes(m, "max_bytes", &s->max_bytes);
    int on_full = GetEnum(m, "on_full", {"reject", "drop_oldest"});
    if (on_full >= 0) {
      s->on_full = on_full == 0 ? OnFull::kReject : OnFull::kDropOldest;
    }
    int fsync = GetEnum(m, "fsync", {"always", "interval", "never"});
    if (fsync >= 0) {
      s->fsync = fsync == 0   ? FsyncPolicy::kAlways
                 : fsync == 1 ? FsyncPolicy::kInterval
                              : FsyncPolicy::kNever;
    }
    GetDuration(m, "fsync_interval", &s->fsync_interval, false);
    if (GetBytes(m, "segment_bytes", &s->segment_bytes)) {
      if (s->segment_bytes > s->max_bytes) {
        Error(m.Find("segment_bytes")->value_pos, m.Child("segment_bytes"),
              absl::StrCat("segment_bytes (", s->segment_bytes,
                           ") is larger than max_bytes (", s->max_bytes, ")"));
      }
    } else if (!m.Has("segment_bytes")) {
      // A small queue gets smaller segments rather than an error.
      s->segment_bytes = std::min(s->segment_bytes, s->max_bytes);
    }
  }

  absl::string_view text_;
  std::string source_path_;
  LoadOptions options_;
  std::vector<ConfigError>* errors_;
  std::vector<size_t> line_starts_;
  fs::path base_dir_;
  relabel::NameScheme scheme_ = relabel::NameScheme::kUtf8;
};

absl::Status ErrorsToStatus(const std::vector<ConfigError>& errors,
                            absl::string_view source_path, bool list_all) {
  std::string prefix =
      source_path.empty() ? std::string() : absl::StrCat(source_path, ":");
  std::string msg;
  if (list_all) {
    for (const ConfigError& e : errors) {
      if (!msg.empty()) msg += "\n";
      // "file:line:col: field: message", or "file: field: message".
      absl::StrAppend(&msg, prefix, e.line > 0 || prefix.empty() ? "" : " ",
                      e.ToString());
    }
  } else {
    absl::StrAppend(&msg, prefix,
                    errors[0].line > 0 || prefix.empty() ? "" : " ",
                    errors[0].ToString());
    if (errors.size() > 1) {
      absl::StrAppend(&msg, " (and ", errors.size() - 1, " more errors)");
    }
  }
  return absl::InvalidArgumentError(msg);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Config>> LoadFromString(
    std::string_view yaml, std::string_view source_path,
    std::vector<ConfigError>* errors, const LoadOptions& options) {
  std::vector<ConfigError> local;
  std::vector<ConfigError>* errs = errors ? errors : &local;
  size_t first = errs->size();
  Loader loader(absl::string_view(yaml.data(), yaml.size()),
                std::string(source_path), options, errs);
  std::unique_ptr<Config> config = loader.Load();
  if (errs->size() == first && config != nullptr) {
    return std::shared_ptr<const Config>(std::move(config));
  }
  // Zero lines (not tied to a place) sort last.
  std::stable_sort(errs->begin() + first, errs->end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     auto key = [](const ConfigError& e) {
                       return std::make_pair(e.line == 0 ? INT32_MAX : e.line,
                                             e.column);
                     };
                     return key(a) < key(b);
                   });
  std::vector<ConfigError> mine(errs->begin() + first, errs->end());
  return ErrorsToStatus(mine, std::string(source_path), errors == nullptr);
}

absl::StatusOr<std::shared_ptr<const Config>> LoadFromFile(
    const std::string& path, std::vector<ConfigError>* errors,
    const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string why = std::strerror(errno);
    ConfigError e{0, 0, "", absl::StrCat("cannot read config file: ", why)};
    if (errors) errors->push_back(e);
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.message));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return LoadFromString(buf.str(), path, errors, options);
}

}  // namespace promrelay::config
