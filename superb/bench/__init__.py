"""``superb bench``: the whole SUPERB evaluation of one upstream from one data root, planned, then run as stages
(extract each corpus once, sweep each task, report) that a rerun resumes."""
