#@ String (label="Service URL", value="http://127.0.0.1:8765") url
#@ String (label="Access token (empty = keep the current one, - = none)", style="password", required=false, persist=false) token
#@ File (label="Python environment of rescunet-ij (starts a local service)", style="directory", required=false) env
#@ File (label="Model file (.rescunet)", style="open", required=false) model
#@ Boolean (label="Check the connection now", value=true) check
// Plugins > ReSCU-Net > ReSCU-Net Settings
//
// Where the rescunet-ij service runs, its access token (if it has one), the Python environment to
// start a local service from (e.g. ~/venvs/rescunet or C:\Users\me\rescunet-env), and the model.
// Kept in ImageJ's preferences (IJ_Prefs.txt: rescunet.url, rescunet.token, rescunet.env,
// rescunet.model). The token is stored there in plain text; the macro recorder leaves it out.
// Macro: run("ReSCU-Net Settings", "url=http://127.0.0.1:8765 env=/home/me/venv model=/data/cells.rescunet check=true");
import ij.IJ

// Load the shared library (Fiji.app/lib/rescunet-ij/RescunetClient.groovy; -Drescunet.lib=FILE overrides).
def libFile = new File(System.getProperty("rescunet.lib") ?: new File(System.getProperty("fiji.dir") ?:
    (IJ.getDirectory("imagej") ?: "."), "lib/rescunet-ij/RescunetClient.groovy").path)
if (!libFile.isFile()) {
    IJ.error("ReSCU-Net", "The ReSCU-Net library is missing:\n" + libFile +
        "\nInstall the Fiji commands again with: rescunet-ij install-fiji <path to Fiji.app>")
    return
}
// Compiled once per Fiji session (and again when the file changes): parsing it costs 0.15-0.4 s.
def libKey = libFile.canonicalPath + "@" + libFile.lastModified()
def libCache = System.getProperties().get("rescunet.lib.cache")
def R = (libCache instanceof Map && libCache.key == libKey) ? libCache.cls : null
if (R == null) {
    R = new GroovyClassLoader(getClass().getClassLoader()).parseClass(libFile)
    System.getProperties().put("rescunet.lib.cache", [key: libKey, cls: R])
}

result = ""
try {
    R.begin()
    String t = token == null ? "" : token.trim()
    String newToken = t == "" ? null : (t == "-" ? "" : t)
    R.saveSettings(url ?: R.DEFAULT_URL, newToken, env == null ? "" : env.path, model == null ? "" : model.path)
    def client = R.fromPrefs()
    result = "saved"
    IJ.log("ReSCU-Net settings saved: service " + client.url + (client.token ? " (with a token)" : "") +
        ", environment " + (client.env ?: "(none)") + ", model " + (client.model ?: "(none)"))
    if (check) {
        try {
            def h = client.ensureService()
            IJ.log("  the service answers: rescunet-ij " + h.version + ", device " + h.device)
            result = "saved; service " + h.version + " on " + h.device
        } catch (Exception e) {
            IJ.log("  " + R.messageOf(e))
            result = "saved; " + R.messageOf(e)
        }
        if (client.model && !new File(client.model).isFile()) IJ.log("  the model file " + client.model + " does not exist")
    }
    IJ.showStatus("ReSCU-Net: settings saved")
} catch (Throwable e) {
    R.fail(e)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
