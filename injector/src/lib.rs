//! keyhole-injector: the mutating admission webhook that adds keyhole-agent to pods.
