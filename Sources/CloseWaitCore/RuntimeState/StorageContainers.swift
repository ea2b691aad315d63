/// StorageContainers reads containers/storage's list of containers, which podman (and CRI-O)
/// keep under their storage: `GRAPHROOT/overlay-containers/containers.json` and, for volatile
/// containers, `RUNROOT/overlay-containers/volatile-containers.json`: an array of records
/// with `id` and `names` (podman's `--name` first). One read names every container in it.
public enum StorageContainers {
    /// Container id -> its first name; records without an id or a name are skipped.
    public static func names(_ bytes: [UInt8]) throws(RuntimeStateError) -> [String: ByteString] {
        let list: JSONValue
        do { list = try JSONParser.parse(bytes) } catch { throw .json(error) }
        guard case let .array(records) = list else { throw .wrongShape("not a JSON array") }
        var out = [String: ByteString]()
        for record in records {
            guard case let .string(id)? = ContainerNames.member(record, "id"),
                case let .array(names)? = ContainerNames.member(record, "names"),
                let name = names.lazy.compactMap({ ContainerNames.value($0) }).first
            else { continue }
            out[id] = name
        }
        return out
    }
}
