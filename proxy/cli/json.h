// The little JSON that test-rules reads and writes: label sets as objects of
// strings, and its golden files (objects, strings, null). Not a general JSON
// library: numbers are kept as text and never computed with.
#ifndef PROMRELAY_PROXY_CLI_JSON_H_
#define PROMRELAY_PROXY_CLI_JSON_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promrelay::cli {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  std::string text;  // kString: the decoded string; kNumber: as written
  std::vector<JsonValue> array;
  // Members in file order; duplicates are rejected by the parser.
  std::vector<std::pair<std::string, JsonValue>> object;

  const JsonValue* Find(absl::string_view key) const;
};

// Parses one JSON value at the start of `text`; *consumed gets the number of
// bytes used (trailing text is the caller's business).
absl::StatusOr<JsonValue> ParseJson(absl::string_view text, size_t* consumed);

// Appends `s` as a JSON string literal (with quotes).
void AppendJsonString(std::string* out, absl::string_view s);

}  // namespace promrelay::cli

#endif  // PROMRELAY_PROXY_CLI_JSON_H_
