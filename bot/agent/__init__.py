"""bot/agent"""
