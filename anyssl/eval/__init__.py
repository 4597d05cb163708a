"""anyssl.eval"""
