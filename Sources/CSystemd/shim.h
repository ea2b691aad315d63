#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <systemd/sd-bus.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* sd_bus_call_method is variadic (Swift cannot call it): one fixed shape per systemd method
 * closewaitd calls, each answering an object path (strdup'ed, free()d by the caller). */

static inline int cw_bus_read_path(sd_bus_message *reply, char **out) {
    const char *path = NULL;
    int r = sd_bus_message_read(reply, "o", &path);
    if (r >= 0) {
        *out = strdup(path);
        if (*out == NULL) r = -ENOMEM;
    }
    sd_bus_message_unref(reply);
    return r;
}

/* org.freedesktop.systemd1.Manager.GetUnitByPID(u pid) -> o unit */
static inline int cw_bus_unit_by_pid(sd_bus *bus, uint32_t pid, char **out, sd_bus_error *error) {
    sd_bus_message *reply = NULL;
    int r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "GetUnitByPID", error, &reply, "u", pid);
    if (r < 0) return r;
    return cw_bus_read_path(reply, out);
}

/* org.freedesktop.systemd1.Manager.RestartUnit(s name, s mode) -> o job */
static inline int cw_bus_restart_unit(sd_bus *bus, const char *unit, const char *mode, char **out,
                                      sd_bus_error *error) {
    sd_bus_message *reply = NULL;
    int r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "RestartUnit", error, &reply, "ss", unit, mode);
    if (r < 0) return r;
    return cw_bus_read_path(reply, out);
}
