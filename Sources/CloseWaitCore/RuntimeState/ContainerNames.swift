/// ContainerNames is what a container runtime's own state on the host says of a container:
/// its name (`docker ps` NAMES, podman's name, the Kubernetes container name), its pod and the
/// pod's namespace (CRI annotations), Compose's project and service. Every value was written
/// by the runtime from what its user asked for: untrusted bytes, cut to `maximumBytes` and
/// escaped wherever shown.
public struct ContainerNames: Equatable, Sendable {
    public var name: ByteString?
    public var podName: ByteString?
    public var podNamespace: ByteString?
    public var podUID: ByteString?
    public var composeProject: ByteString?
    public var composeService: ByteString?

    public init(
        name: ByteString? = nil, podName: ByteString? = nil, podNamespace: ByteString? = nil,
        podUID: ByteString? = nil, composeProject: ByteString? = nil, composeService: ByteString? = nil
    ) {
        self.name = name
        self.podName = podName
        self.podNamespace = podNamespace
        self.podUID = podUID
        self.composeProject = composeProject
        self.composeService = composeService
    }

    /// Kubernetes' longest name (a DNS subdomain, 253); anything longer is cut, not refused.
    public static let maximumBytes = 253

    public var isEmpty: Bool { self == ContainerNames() }

    /// A value from a runtime's JSON: nil when absent or empty, else its bytes cut to size.
    static func value(_ json: JSONValue?) -> ByteString? {
        guard case let .string(text)? = json, !text.isEmpty else { return nil }
        return ByteString(Array(text.utf8.prefix(maximumBytes)))
    }

    /// The members of a JSON object (an empty list for anything else).
    static func members(_ json: JSONValue?) -> [(String, JSONValue)] {
        if case let .object(members)? = json { return members }
        return []
    }

    static func member(_ json: JSONValue?, _ key: String) -> JSONValue? {
        members(json).first { $0.0 == key }?.1
    }

    /// Names from Kubernetes' labels or annotations, whichever runtime wrote them: containerd's
    /// CRI plugin (`io.kubernetes.cri.*`), CRI-O and dockershim / cri-dockerd
    /// (`io.kubernetes.pod.*`, `io.kubernetes.container.name`), Compose (`com.docker.compose.*`).
    static func fromKubernetes(_ map: JSONValue?) -> ContainerNames {
        let get = { (key: String) in value(member(map, key)) }
        return ContainerNames(
            name: get("io.kubernetes.cri.container-name") ?? get("io.kubernetes.container.name"),
            podName: get("io.kubernetes.cri.sandbox-name") ?? get("io.kubernetes.pod.name"),
            podNamespace: get("io.kubernetes.cri.sandbox-namespace") ?? get("io.kubernetes.pod.namespace"),
            podUID: get("io.kubernetes.cri.sandbox-uid") ?? get("io.kubernetes.pod.uid"),
            composeProject: get("com.docker.compose.project"),
            composeService: get("com.docker.compose.service"))
    }
}

/// RuntimeStateError says why a runtime's state file gave no names.
public enum RuntimeStateError: Error, Equatable, CustomStringConvertible {
    case json(JSONParser.Error)
    case wrongShape(String)

    public var description: String {
        switch self {
        case let .json(error): error.description
        case let .wrongShape(what): what
        }
    }

    /// The document in `bytes`, which must be a JSON object.
    static func object(_ bytes: [UInt8]) throws(RuntimeStateError) -> JSONValue {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw .json(error) }
        guard case .object = value else { throw .wrongShape("not a JSON object") }
        return value
    }
}
