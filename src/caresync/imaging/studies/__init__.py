"""Imaging studies of patients and the AI analyses run on them."""
