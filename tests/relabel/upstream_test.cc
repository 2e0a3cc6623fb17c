// The cases of Prometheus's model/relabel TestRelabel, TestRelabelValidate
// and TestTargetLabelLegacyValidity, rewritten for promrelay. Fields the
// upstream cases leave empty are omitted here, which gives the same
// defaults the upstream test fills in.
#include "tests/relabel/helpers.h"

namespace promrelay::relabel::testing {
namespace {

TEST_CASE("upstream: replace with ${1} twice", "[relabel][upstream]") {
  auto out = Run({R().src({"a"})
                      .re("f(.*)")
                      .target("d")
                      .sep(";")
                      .repl("ch${1}-ch${1}")
                      .action("replace")},
                 {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}});
  CHECK(out ==
        LabelMap{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "choo-choo"}});
}

TEST_CASE("upstream: chained replaces see earlier results",
          "[relabel][upstream]") {
  auto out = Run({R().src({"a", "b"})
                      .re("f(.*);(.*)r")
                      .target("a")
                      .sep(";")
                      .repl("b${1}${2}m")
                      .action("replace"),
                  R().src({"c", "a"})
                      .re("(b).*b(.*)ba(.*)")
                      .target("d")
                      .sep(";")
                      .repl("$1$2$2$3")
                      .action("replace")},
                 {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}});
  CHECK(out ==
        LabelMap{{"a", "boobam"}, {"b", "bar"}, {"c", "baz"}, {"d", "boooom"}});
}

TEST_CASE("upstream: drop stops before later rules", "[relabel][upstream]") {
  auto out =
      Run({R().src({"a"}).re(".*o.*").action("drop"), R().src({"a"})
                                                          .re("f(.*)")
                                                          .target("d")
                                                          .sep(";")
                                                          .repl("ch$1-ch$1")
                                                          .action("replace")},
          {{"a", "foo"}});
  CHECK_FALSE(out.has_value());
}

TEST_CASE("upstream: drop on match", "[relabel][upstream]") {
  CHECK_FALSE(Run({R().src({"a"}).re(".*o.*").action("drop")},
                  {{"a", "foo"}, {"b", "bar"}}));
}

TEST_CASE("upstream: replace with a group in the middle",
          "[relabel][upstream]") {
  auto out =
      Run({R().src({"a"}).re(".*(b).*").target("d").sep(";").repl("$1").action(
              "replace")},
          {{"a", "abc"}});
  CHECK(out == LabelMap{{"a", "abc"}, {"d", "b"}});
}

TEST_CASE("upstream: drop without match keeps", "[relabel][upstream]") {
  CHECK(Run({R().src({"a"}).re("no-match").action("drop")}, {{"a", "foo"}}) ==
        LabelMap{{"a", "foo"}});
}

TEST_CASE("upstream: alternation is anchored as a whole",
          "[relabel][upstream]") {
  CHECK(Run({R().src({"a"}).re("f|o").action("drop")}, {{"a", "foo"}}) ==
        LabelMap{{"a", "foo"}});
}

TEST_CASE("upstream: keep without match drops", "[relabel][upstream]") {
  CHECK_FALSE(
      Run({R().src({"a"}).re("no-match").action("keep")}, {{"a", "foo"}}));
}

TEST_CASE("upstream: keep with match", "[relabel][upstream]") {
  CHECK(Run({R().src({"a"}).re("f.*").action("keep")}, {{"a", "foo"}}) ==
        LabelMap{{"a", "foo"}});
}

TEST_CASE("upstream: no replacement without a match", "[relabel][upstream]") {
  CHECK(Run({R().src({"a"}).re("f").target("b").repl("bar").action("replace")},
            {{"a", "boo"}}) == LabelMap{{"a", "boo"}});
}

TEST_CASE("upstream: blank replacement deletes the label",
          "[relabel][upstream]") {
  CHECK(Run({R().src({"a"}).re("(f).*").target("$1").repl("$2").action(
                "replace")},
            {{"a", "foo"}, {"f", "baz"}}) == LabelMap{{"a", "foo"}});
}

TEST_CASE("upstream: hashmod", "[relabel][upstream]") {
  CHECK(Run({R().src({"c"}).target("d").sep(";").action("hashmod").mod(1000)},
            {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}}) ==
        LabelMap{{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "976"}});
  CHECK(Run({R().src({"a"}).target("b").sep(";").action("hashmod").mod(1000)},
            {{"a", "foo\nbar"}}) == LabelMap{{"a", "foo\nbar"}, {"b", "734"}});
}

TEST_CASE("upstream: labelmap", "[relabel][upstream]") {
  CHECK(Run({R().re("(b.*)").repl("bar_${1}").action("labelmap")},
            {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}) ==
        LabelMap{{"a", "foo"},
                 {"b1", "bar"},
                 {"b2", "baz"},
                 {"bar_b1", "bar"},
                 {"bar_b2", "baz"}});
  CHECK(Run({R().re("__meta_(my.*)").repl("${1}").action("labelmap")},
            {{"a", "foo"},
             {"__meta_my_bar", "aaa"},
             {"__meta_my_baz", "bbb"},
             {"__meta_other", "ccc"}}) == LabelMap{{"a", "foo"},
                                                   {"__meta_my_bar", "aaa"},
                                                   {"__meta_my_baz", "bbb"},
                                                   {"__meta_other", "ccc"},
                                                   {"my_bar", "aaa"},
                                                   {"my_baz", "bbb"}});
}

TEST_CASE("upstream: templated target label", "[relabel][upstream]") {
  // valid case
  CHECK(Run({R().src({"a"})
                 .re("some-([^-]+)-([^,]+)")
                 .action("replace")
                 .repl("${2}")
                 .target("${1}")},
            {{"a", "some-name-value"}}) ==
        LabelMap{{"a", "some-name-value"}, {"name", "value"}});
  // invalid replacement ""
  CHECK(Run({R().src({"a"})
                 .re("some-([^-]+)-([^,]+)")
                 .action("replace")
                 .repl("${3}")
                 .target("${1}")},
            {{"a", "some-name-value"}}) == LabelMap{{"a", "some-name-value"}});
  // invalid target_labels
  auto rule = R().src({"a"})
                  .re("some-([^-]+)-([^,]+)")
                  .action("replace")
                  .repl("${1}")
                  .target("${3}");
  CHECK(Run({rule, rule,
             R().src({"a"})
                 .re("some-([^-]+)(-[^,]+)")
                 .action("replace")
                 .repl("${1}")
                 .target("${3}")},
            {{"a", "some-name-0"}}) == LabelMap{{"a", "some-name-0"}});
}

TEST_CASE("upstream: real-life sd tags", "[relabel][upstream]") {
  auto out =
      Run({R().src({"__meta_sd_tags"})
               .re("(?:.+,|^)path:(/[^,]+).*")
               .action("replace")
               .repl("${1}")
               .target("__metrics_path__"),
           R().src({"__meta_sd_tags"})
               .re("(?:.+,|^)job:([^,]+).*")
               .action("replace")
               .repl("${1}")
               .target("job"),
           R().src({"__meta_sd_tags"})
               .re("(?:.+,|^)label:([^=]+)=([^,]+).*")
               .action("replace")
               .repl("${2}")
               .target("${1}")},
          {{"__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"}});
  CHECK(out ==
        LabelMap{{"__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"},
                 {"__metrics_path__", "/secret"},
                 {"job", "some-job"},
                 {"foo", "bar"}});
}

TEST_CASE("upstream: issue 12283, labeldrop then set again",
          "[relabel][upstream]") {
  auto out =
      Run({R().re("^__meta_kubernetes_pod_container_port_name$")
               .action("labeldrop"),
           R().src({"__meta_kubernetes_pod_annotation_XXX_metrics_port"})
               .re("(.+)")
               .action("replace")
               .repl("metrics")
               .target("__meta_kubernetes_pod_container_port_name"),
           R().src({"__meta_kubernetes_pod_container_port_name"})
               .re("^metrics$")
               .action("keep")},
          {{"__meta_kubernetes_pod_container_port_name", "foo"},
           {"__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"}});
  CHECK(out ==
        LabelMap{{"__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"},
                 {"__meta_kubernetes_pod_container_port_name", "metrics"}});
}

TEST_CASE("upstream: labelkeep and labeldrop", "[relabel][upstream]") {
  LabelMap in{{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}};
  CHECK(Run({R().re("(b.*)").action("labelkeep")}, in) ==
        LabelMap{{"b1", "bar"}, {"b2", "baz"}});
  CHECK(Run({R().re("(b.*)").action("labeldrop")}, in) ==
        LabelMap{{"a", "foo"}});
}

TEST_CASE("upstream: uppercase and lowercase", "[relabel][upstream]") {
  CHECK(Run({R().src({"foo"}).action("uppercase").target("foo_uppercase"),
             R().src({"foo"}).action("lowercase").target("foo_lowercase")},
            {{"foo", "bAr123Foo"}}) ==
        LabelMap{{"foo", "bAr123Foo"},
                 {"foo_lowercase", "bar123foo"},
                 {"foo_uppercase", "BAR123FOO"}});
}

TEST_CASE("upstream: keepequal and dropequal", "[relabel][upstream]") {
  LabelMap in{{"__tmp_port", "1234"}, {"__port1", "1234"}, {"__port2", "5678"}};
  CHECK(Run({R().src({"__tmp_port"}).action("keepequal").target("__port1")},
            in) == in);
  CHECK_FALSE(
      Run({R().src({"__tmp_port"}).action("dropequal").target("__port1")}, in));
  CHECK(Run({R().src({"__tmp_port"}).action("dropequal").target("__port2")},
            in) == in);
  CHECK_FALSE(
      Run({R().src({"__tmp_port"}).action("keepequal").target("__port2")}, in));
}

TEST_CASE("upstream: dot matches newline", "[relabel][upstream]") {
  CHECK(Run({R().src({"a"})
                 .re("line1.*line2")
                 .target("d")
                 .sep(";")
                 .repl("match${1}")
                 .action("replace")},
            {{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}}) ==
        LabelMap{
            {"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}, {"d", "match"}});
}

TEST_CASE("upstream: UTF-8 label names", "[relabel][upstream]") {
  CHECK(Run({R().src({"utf-8.label"})
                 .re("line1.*line2")
                 .target("d")
                 .sep(";")
                 .repl("match${1}")
                 .action("replace")},
            {{"utf-8.label", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}}) ==
        LabelMap{{"utf-8.label", "line1\nline2"},
                 {"b", "bar"},
                 {"c", "baz"},
                 {"d", "match"}});
  LabelMap in{{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}};
  LabelMap want = in;
  want["utf-8.label"] = "match";
  CHECK(Run({R().src({"a"})
                 .re("line1.*line2")
                 .target("utf-8.label")
                 .sep(";")
                 .repl("match${1}")
                 .action("replace")},
            in) == want);
  CHECK(Run({R().src({"a"})
                 .re("line1.*line2")
                 .target("utf-8.label${1}")
                 .sep(";")
                 .repl("match${1}")
                 .action("replace")},
            in) == want);
}

TEST_CASE("upstream: named groups and $var styles", "[relabel][upstream]") {
  auto out = Run({R().src({"a"})
                      .re("(line1).*(?<second>line2)")
                      .target("label1_${1}")
                      .sep(";")
                      .repl("val_${second}")
                      .action("replace"),
                  R().src({"a"})
                      .re("(line1).*(?<second>line2)")
                      .target("label2_$1")
                      .sep(";")
                      .repl("val_$second")
                      .action("replace")},
                 {{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}});
  CHECK(out == LabelMap{{"a", "line1\nline2"},
                        {"b", "bar"},
                        {"c", "baz"},
                        {"label1_line1", "val_line2"},
                        {"label2_line1", "val_line2"}});
}

TEST_CASE("upstream: trailing $ in the regex", "[relabel][upstream]") {
  CHECK(Run({R().src({"__name__"})
                 .re(".*_total$")
                 .target("__type__")
                 .repl("counter")
                 .action("replace")},
            {{"__name__", "http_requests_total"}}) ==
        LabelMap{{"__name__", "http_requests_total"}, {"__type__", "counter"}});
  CHECK(Run({R().src({"__name__"})
                 .re(".*_bytes$")
                 .target("__unit__")
                 .repl("bytes")
                 .action("replace")},
            {{"__name__", "disk_usage_bytes"}}) ==
        LabelMap{{"__name__", "disk_usage_bytes"}, {"__unit__", "bytes"}});
}

TEST_CASE("upstream: TestRelabelValidate", "[relabel][upstream][validate]") {
  CHECK(ErrorOf(R().action_null()) == "action: relabel action cannot be empty");
  CHECK(ErrorOf(R().action("replace")) ==
        "target_label: relabel configuration for replace action requires "
        "'target_label' value");
  CHECK(ErrorOf(R().action("lowercase")) ==
        "target_label: relabel configuration for lowercase action requires "
        "'target_label' value");
  CHECK(ErrorOf(R().action("lowercase").repl("$1").target("${3}")) == "");
  CHECK(
      ErrorOf(R().action("lowercase").repl("$1").target("${3}"),
              NameScheme::kLegacy) ==
      "target_label: \"${3}\" is invalid 'target_label' for lowercase action");
  auto r =
      R().src({"a"}).re("some-([^-]+)-([^,]+)").action("replace").repl("${1}");
  CHECK(ErrorOf(R(r).target("${3}")) == "");
  CHECK(ErrorOf(R(r).target("0${3}")) == "");
  CHECK(ErrorOf(R(r).target("-${3}")) == "");
  CHECK(ErrorOf(R().re("__meta_kubernetes_pod_label_(strimzi_io_.+)")
                    .action("labelmap")
                    .repl("$1"),
                NameScheme::kLegacy) == "");
  CHECK(ErrorOf(R().re("__meta_(.+)").action("labelmap").repl("${1}"),
                NameScheme::kLegacy) == "");
}

TEST_CASE("upstream: TestTargetLabelLegacyValidity",
          "[relabel][upstream][validate]") {
  const std::pair<const char*, bool> cases[] = {
      {"-label", false},
      {"label", true},
      {"label${1}", true},
      {"${1}label", true},
      {"${1}", true},
      {"${", false},
      {"$", false},
      {"${}", false},
      {"foo${", false},
      {"$1", true},
      {"asd$2asd", true},
      {"-foo${1}bar-", false},
      {"bar.foo${1}bar", false},
      {"_${1}_", true},
      {"foo${bar}foo", true},
  };
  for (const auto& [target, valid] : cases) {
    INFO(target);
    // A replace target with `$` is checked against the legacy template
    // pattern; without `$`, as a plain legacy name (same answers here).
    std::string err =
        ErrorOf(R().src({"a"}).target(target), NameScheme::kLegacy);
    CHECK(err.empty() == valid);
    if (!valid) {
      CHECK(err == std::string("target_label: \"") + target +
                       "\" is invalid 'target_label' for replace action");
    }
    // Under UTF-8 every non-empty valid UTF-8 target is accepted.
    CHECK(ErrorOf(R().src({"a"}).target(target)) == "");
  }
}

// The rule lists of upstream BenchmarkRelabel, run as functional tests.
TEST_CASE("upstream benchmark config: example", "[relabel][upstream]") {
  auto out =
      Run({R().src({"job", "__meta_dns_name"})
               .re("(.*)some-[regex]")
               .target("job")
               .repl("foo-${1}"),
           R().src({"abc"}).target("cde"), R().repl("static").target("abc"),
           R().re("").repl("static").target("abc")},  // `regex:` null
          {{"__meta_dns_name", "example-some-x.com"},
           {"abc", "def"},
           {"job", "foo"}});
  // "foo;example-some-x.com" does not end in "some-" + one of r,e,g,x: no
  // change to job. abc is copied to cde, then set to "static"; the last rule
  // has the empty regex, which the empty source value matches.
  CHECK(out == LabelMap{{"__meta_dns_name", "example-some-x.com"},
                        {"abc", "static"},
                        {"cde", "def"},
                        {"job", "foo"}});
  auto out2 = Run({R().src({"job", "__meta_dns_name"})
                       .re("(.*)some-[regex]")
                       .target("job")
                       .repl("foo-${1}")},
                  {{"__meta_dns_name", "example-some-x"}, {"job", "foo"}});
  CHECK(out2 == LabelMap{{"__meta_dns_name", "example-some-x"},
                         {"job", "foo-foo;example-"}});
}

TEST_CASE("upstream benchmark config: kubernetes", "[relabel][upstream]") {
  std::vector<RuleSpec> rules = {
      R().src({"__meta_kubernetes_pod_container_port_name"})
          .re(".*-metrics")
          .action("keep"),
      R().src({"__meta_kubernetes_pod_label_name"}).action("drop").re(""),
      R().src({"__meta_kubernetes_pod_phase"})
          .re("Succeeded|Failed")
          .action("drop"),
      R().src({"__meta_kubernetes_pod_annotation_prometheus_io_scrape"})
          .re("false")
          .action("drop"),
      R().src({"__meta_kubernetes_pod_annotation_prometheus_io_scheme"})
          .target("__scheme__")
          .re("(https?)")
          .repl("$1")
          .action("replace"),
      R().src({"__meta_kubernetes_pod_annotation_prometheus_io_path"})
          .target("__metrics_path__")
          .re("(.+)")
          .repl("$1")
          .action("replace"),
      R().src({"__address__",
               "__meta_kubernetes_pod_annotation_prometheus_io_port"})
          .target("__address__")
          .re("(.+?)(\\:\\d+)?;(\\d+)")
          .repl("$1:$3")
          .action("replace"),
      R().re("__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)")
          .repl("__param_$1")
          .action("labelmap"),
      R().re("__meta_kubernetes_pod_label_prometheus_io_label_(.+)")
          .action("labelmap"),
      R().re("__meta_kubernetes_pod_annotation_prometheus_io_label_(.+)")
          .action("labelmap"),
      R().src({"__meta_kubernetes_namespace",
               "__meta_kubernetes_pod_label_name"})
          .sep("/")
          .target("job")
          .repl("$1")
          .action("replace"),
      R().src({"__meta_kubernetes_namespace"})
          .target("namespace")
          .action("replace"),
      R().src({"__meta_kubernetes_pod_name"}).target("pod").action("replace"),
      R().src({"__meta_kubernetes_pod_container_name"})
          .target("container")
          .action("replace"),
      R().src({"__meta_kubernetes_pod_name",
               "__meta_kubernetes_pod_container_name",
               "__meta_kubernetes_pod_container_port_name"})
          .sep(":")
          .target("instance")
          .action("replace"),
      R().target("cluster").repl("dev-us-central-0"),
      R().src({"__meta_kubernetes_namespace"})
          .re("hosted-grafana")
          .action("drop"),
      R().src({"__address__"}).target("__tmp_hash").mod(3).action("hashmod"),
      R().src({"__tmp_hash"}).re("^0$").action("keep"),
      R().re("__tmp_hash").action("labeldrop"),
  };
  LabelMap in = {
      {"__address__", "10.132.183.40:80"},
      {"__meta_kubernetes_namespace", "loki-boltdb-shipper"},
      {"__meta_kubernetes_pod_container_name", "promtail"},
      {"__meta_kubernetes_pod_container_port_name", "http-metrics"},
      {"__meta_kubernetes_pod_label_name", "promtail-loki-boltdb-shipper"},
      {"__meta_kubernetes_pod_name", "promtail-loki-boltdb-shipper-jgtr7"},
      {"__meta_kubernetes_pod_phase", "Running"},
      {"__metrics_path__", "/metrics"},
      {"__scheme__", "http"},
      {"job", "kubernetes-pods"},
  };
  // The hashmod bucket decides keep/drop; compute the expectation from the
  // documented arithmetic rather than trusting the implementation.
  std::optional<LabelMap> out = Run(rules, in);
  LabelMap want = in;
  want["job"] = "loki-boltdb-shipper/promtail-loki-boltdb-shipper";
  want["namespace"] = "loki-boltdb-shipper";
  want["pod"] = "promtail-loki-boltdb-shipper-jgtr7";
  want["container"] = "promtail";
  want["instance"] = "promtail-loki-boltdb-shipper-jgtr7:promtail:http-metrics";
  want["cluster"] = "dev-us-central-0";
  // With no port annotation the __address__ source is "10.132.183.40:80;"
  // which needs digits after ';': no match, __address__ stays.
  std::vector<Label> probe = {{"__address__", "10.132.183.40:80"}};
  RuleSet hash = MustCompile(
      {R().src({"__address__"}).target("h").mod(3).action("hashmod")});
  LabelBuilder b;
  b.Reset(probe);
  REQUIRE(hash.Apply(b));
  if (b.Get("h") == "0") {
    CHECK(out == want);
  } else {
    CHECK_FALSE(out.has_value());
  }
  // Same rules with an address that lands in bucket 0 must be kept.
  for (int i = 0; i < 50; ++i) {
    std::string addr = "10.0.0." + std::to_string(i) + ":80";
    b.Reset(std::vector<Label>{{"__address__", addr}});
    REQUIRE(hash.Apply(b));
    if (b.Get("h") != "0") continue;
    LabelMap in2 = in;
    in2["__address__"] = addr;
    LabelMap want2 = want;
    want2["__address__"] = addr;
    CHECK(Run(rules, in2) == want2);
    break;
  }
}

TEST_CASE("upstream benchmark config: static label pair",
          "[relabel][upstream]") {
  auto out = Run(
      {R().repl("wwwwww").target("wwwwww"),
       R().repl("yyyyyyyyyyyy").target("xxxxxxxxx"),
       R().repl("xxxxxxxxx").target("yyyyyyyyyyyy"),
       R().src({"something"}).target("with_source_labels").repl("value"),
       R().repl("dropped").target("${0}"), R().repl("${0}").target("dropped")},
      {{"abcdefg01", "hijklmn1"}, {"job", "foo"}});
  // ${0} is the whole (empty) match: the target "" is skipped and the
  // replacement "" deletes the (absent) label "dropped".
  CHECK(out == LabelMap{{"abcdefg01", "hijklmn1"},
                        {"job", "foo"},
                        {"wwwwww", "wwwwww"},
                        {"xxxxxxxxx", "yyyyyyyyyyyy"},
                        {"yyyyyyyyyyyy", "xxxxxxxxx"},
                        {"with_source_labels", "value"}});
}

}  // namespace
}  // namespace promrelay::relabel::testing
