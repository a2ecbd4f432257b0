"""focal/enforcement"""
