"""focal"""
