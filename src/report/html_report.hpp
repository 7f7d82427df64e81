// The dashboard report (M12, issue 6): one self-contained report.html built from the trend store —
// an overview of one run (counts, regressions first, failures), a trend plot per series with its
// change points and anomaly marked, the compatibility matrix (model x hardware x precision), a
// run-to-run comparison, the run list and the task table, linked to each other by anchors.
// docs/report.md describes the page.
//
// The page embeds everything it needs: uPlot (from npm, pinned by web/package-lock.json), the page
// script and styles of web/ (compiled into the binary by CMake, see generated/report/
// web_assets.cpp), and the data as JSON. It makes no network request and works from file://.
//
// Layering: render_html_report is pure (data in, text out); load_report_input is the I/O shell
// that reads the store and its trends (report::analyse_store).
// Thread-safety: render_html_report is pure; load_report_input uses an Hdf5Reader (HDF5 is
// not thread-safe: one thread at a time in the store module).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "report/trends.hpp"
#include "store/hdf5_store.hpp"

namespace ipfsa::report {

struct HtmlReportInput {
  std::string store_path;                    // shown in the page header
  std::string run_id;                        // the run of the overview; must be in `runs`
  std::vector<store::StoredRun> runs;        // the runs shown, in store order (oldest first)
  std::vector<store::StoredResult> results;  // every attempt row of those runs (samples unused)
  std::vector<SeriesTrend> trends;           // the series to plot; verdicts as analysed
  std::string generator;                     // "ipfs-accelerate VERSION (COMMIT)", shown in the footer
  double generated_unix = 0;
};

// The whole report.html. Pure: the same input gives the same bytes. Strings from the store are
// JSON-encoded into a <script type="application/json"> block ("</" escaped, invalid UTF-8
// replaced) and put into the page with textContent only, so no stored text is ever parsed as HTML.
// IPFSA_EXPECTS: in.run_id is one of in.runs.
std::string render_html_report(const HtmlReportInput& in);

// Reads the store: the run `run_id` (the newest run, by start time, when empty) and the up to
// `max_runs - 1` runs begun before it, every attempt row of those runs, and every series of the
// store analysed up to that run (report::analyse_store; a series is linked to its task by
// SeriesTrend::task_id). The readers are closed before it returns (they would keep a writer out).
// Errors (kInput): the store's own open/read errors (they name the file), "PATH: the store has no
// runs", "PATH: no run 'ID' in the store".
Result<HtmlReportInput> load_report_input(const std::string& store_path, const std::string& run_id = {},
                                          const TrendOptions& trend_options = {}, std::size_t max_runs = 50);

// render_html_report written to `path` (write_text_file: temporary file renamed into place).
// Error (kInfra) naming the path.
Result<void> write_html_report(const std::string& path, const HtmlReportInput& in);

}  // namespace ipfsa::report
