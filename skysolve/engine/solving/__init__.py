"""Solving a source list: the solver interface, its solvers and the attempt ladder."""
