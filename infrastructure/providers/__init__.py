"""Provider clients (simulated, KIE.ai) behind the `domain.ports.Provider` port, and their registry."""
