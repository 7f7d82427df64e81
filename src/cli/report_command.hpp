// `ipfs-accelerate report`: the dashboard report.html of a trend store's run (docs/report.md), and
// the run's exports (CSV, JSON, JUnit XML, Markdown). Single process, no MPI; reads the store
// through Hdf5Reader (closed before anything is written).
#pragma once

#include <cstddef>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace ipfsa::cli {

struct ReportOptions {
  std::string store;  // the HDF5 trend store (required)
  std::string out;    // report.html path; "report.html" when neither it nor an export is given
  std::string run;    // run id of the overview; empty: the newest run
  std::string csv;    // exports of that run, each written when given
  std::string json;
  std::string junit;
  std::string markdown;
  std::size_t max_runs = 50;  // runs shown: the run and those begun before it
  // Minimum effects of a verdict, as `trends` takes them (the campaign's `thresholds`).
  double threshold_pct = 10.0;
  double throughput_pct = 10.0;
  double accuracy_abs = 0.01;
};

// Registers the `report` subcommand on `app`, parsing into `o` (which must outlive the parse).
CLI::App* add_report_command(CLI::App& app, ReportOptions& o);

// Writes the report and the exports asked for and prints one line per file written ("report: PATH",
// "junit: PATH", ...). Exit codes: 0 written (whatever the run's verdict: `trends` and `run` are
// the commands whose exit code gates CI); 2 for bad input — store missing, corrupt or not a trend
// store, a store without runs, an unknown --run (the message names the file or the run); 3 when an
// output file cannot be written (the message names it; the files written before it stay).
int report_command(const ReportOptions& o);

}  // namespace ipfsa::cli
