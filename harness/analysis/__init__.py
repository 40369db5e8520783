"""Analysis of gathered records: pure pandas tables (tables), the step-size model
(stepsize), and the networks' consistency table (networks). Nothing here draws or writes."""
