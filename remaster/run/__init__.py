"""Running a film: the plan of segments, the segment runner, the executors (in process, processes, Ray), resume
journal, report and config."""
