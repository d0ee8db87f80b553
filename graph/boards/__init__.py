"""Boards: sharing generations between members."""
