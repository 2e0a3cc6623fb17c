// Parsing the series that `promrelay test-rules` reads: one per line, in
// Prometheus notation (`name{a="b"}`, `{"my.name", a="b"}`) or as a JSON
// object of label -> value, optionally followed by a value and a timestamp.
#ifndef PROMRELAY_PROXY_CLI_SERIES_H_
#define PROMRELAY_PROXY_CLI_SERIES_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promrelay::cli {

// Label name -> value, sorted by name (byte-wise).
using LabelSet = std::vector<std::pair<std::string, std::string>>;

// Returns nullopt for a line to skip (blank, or a `#` comment), the label
// set otherwise; InvalidArgument says what is wrong with the line (the caller
// adds the line number).
absl::StatusOr<std::optional<LabelSet>> ParseSeriesLine(absl::string_view line);

// `{"a":"b",...}` with keys sorted (the label set is already sorted).
std::string LabelSetToJson(const LabelSet& labels);

// Prometheus notation for messages: `name{a="b"}`, `{"a.b"="c"}`.
std::string LabelSetToText(const LabelSet& labels);

}  // namespace promrelay::cli

#endif  // PROMRELAY_PROXY_CLI_SERIES_H_
