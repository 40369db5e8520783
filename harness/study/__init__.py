"""One study flow: a spec (elementwise function or network) through support -> evaluate
-> reference -> exclusions -> metrics -> timing -> record (harness.study.flow)."""
