"""The report layer: the only code that draws figures and writes pages. Number formats
(format), the document model (blocks), figures (plots, network_plots: Figures only), one
run's page (run_page), the sweep report (sweep_page), its findings in words (words), and
`python -m harness.report` (__main__)."""
