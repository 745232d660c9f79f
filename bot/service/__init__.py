"""bot/service"""
