//! The buyer side: it will own the x402 client that pays within a spending policy, and the agent capabilities
//! around it (treasury, compliance screening, marketplace discovery, negotiation, spend analytics, CCTP bridging,
//! Circle Gateway) and the MCP server that exposes them as tools.
