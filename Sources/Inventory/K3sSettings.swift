/// The `k3s` block: which release to install, how, and the cluster-wide server settings.
public struct K3sSettings: Sendable, Equatable {
    /// A k3s release such as `v1.31.4+k3s1`.
    public var version: String
    /// The cluster's join secret; nil lets the first server generate one. Listed in `Inventory.secrets`.
    public var token: String?
    /// Absolute folder holding the official airgap assets (`k3s`, `k3s-airgap-images-<arch>.tar.zst`, …).
    public var airgapDirectory: String?
    /// Where to download the install script in online mode (`https://get.k3s.io` or a mirror); never with airgap.
    public var installScriptURL: String?
    /// Extra names and addresses the API server's certificate covers (`tls-san`).
    public var tlsSan: [String]
    /// Packaged components not to deploy (`disable`), such as `traefik`.
    public var disable: [String]
    /// Mode of /etc/rancher/k3s/k3s.yaml as 3 or 4 octal digits, such as `0644`.
    public var writeKubeconfigMode: String?
    /// Further config.yaml keys, as written, in order.
    public var config: [ConfigEntry]

    public init(version: String, token: String? = nil, airgapDirectory: String? = nil,
                installScriptURL: String? = nil, tlsSan: [String] = [], disable: [String] = [],
                writeKubeconfigMode: String? = nil, config: [ConfigEntry] = []) {
        self.version = version
        self.token = token
        self.airgapDirectory = airgapDirectory
        self.installScriptURL = installScriptURL
        self.tlsSan = tlsSan
        self.disable = disable
        self.writeKubeconfigMode = writeKubeconfigMode
        self.config = config
    }

    /// True when k3s is installed from `airgapDirectory` rather than downloaded.
    public var isAirgap: Bool { airgapDirectory != nil }

    /// The value of the top-level `config` key `key`, if set.
    public func config(_ key: String) -> ConfigValue? {
        config.first { $0.key == key }?.value
    }

    /// The config.yaml keys the tool writes itself, and the inventory setting that feeds each.
    public static let ownedConfigKeys: [String: String] = [
        "token": "the k3s block's 'token'",
        "server": "the hosts' roles (servers after the first and all agents join the first server)",
        "cluster-init": "the hosts' roles (the first of 3 or more servers starts embedded etcd)",
        "tls-san": "the k3s block's 'tlsSan'",
        "node-label": "a host's 'labels'",
        "node-taint": "a host's 'taints'",
        "disable": "the k3s block's 'disable'",
        "node-name": "a host's 'nodeName'",
        "write-kubeconfig-mode": "the k3s block's 'writeKubeconfigMode'",
    ]

    /// The components `disable` accepts, as `k3s server --help` lists them.
    public static let components = ["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"]
}

/// One key of the free-form `config` map.
public struct ConfigEntry: Sendable, Equatable {
    public var key: String
    public var value: ConfigValue

    public init(key: String, value: ConfigValue) {
        self.key = key
        self.value = value
    }
}

/// A value in `config`: text as written (numbers and booleans too), a list of texts, or a nested map in order.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case list([String])
    case map([ConfigEntry])
}
