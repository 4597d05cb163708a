"""anyssl.methods"""
