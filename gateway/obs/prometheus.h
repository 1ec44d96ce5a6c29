// obs/prometheus.h — the Prometheus text exposition format (version 0.0.4) of every metric.
// Owns: metric names, HELP texts and label escaping. Reads the registry, the per-plugin
// blocks and the DNS source; builds the text only when /metrics is requested.
// Must not touch: the counters (read only).
#pragma once

#include <string>
#include <string_view>

namespace mailgate::obs {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition, ending with a newline.
std::string prometheus_text();

// A label value escaped as the format wants (backslash, double quote, newline).
std::string escape_label(std::string_view value);

}  // namespace mailgate::obs
