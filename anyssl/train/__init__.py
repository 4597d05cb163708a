"""anyssl.train"""
