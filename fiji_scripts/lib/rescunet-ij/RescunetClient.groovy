// ReSCU-Net for Fiji: the library shared by the commands in Plugins > ReSCU-Net.
//
// Installed as Fiji.app/lib/rescunet-ij/RescunetClient.groovy (NOT under scripts/, which would make
// it a menu command). Each command loads it with
//     new GroovyClassLoader(getClass().getClassLoader()).parseClass(file)
// where file = the system property "rescunet.lib" if set, else <Fiji.app>/lib/rescunet-ij/RescunetClient.groovy,
// and keeps the compiled class for the session (system property "rescunet.lib.cache", keyed by the
// file's path and modification time).
//
// What it does: the settings (ImageJ preferences rescunet.url, rescunet.token, rescunet.env,
// rescunet.model), HTTP to the rescunet-ij service (JSON and multipart, groovy.json), the model id
// (start of the SHA-256 of the model file) and upload, starting a local service when none answers,
// error reporting (a dialog when used from the menu; the Log plus a failed macro when called from a
// macro or headless), and moving ROIs between the ROI Manager, the image's Overlay or RoiSet.zip
// files and the service.
//
// Plain ImageJ 1.x and JDK classes only (present in Fiji and in ImageJ 1.53t).

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import ij.IJ
import ij.ImagePlus
import ij.Prefs
import ij.WindowManager
import ij.gui.Overlay
import ij.gui.Roi
import ij.gui.ShapeRoi
import ij.io.FileSaver
import ij.io.RoiDecoder
import ij.io.RoiEncoder
import ij.macro.Interpreter
import ij.plugin.Duplicator
import ij.plugin.frame.RoiManager
import ij.process.ShortProcessor
import ij.ImageStack

import java.awt.Color
import java.awt.GraphicsEnvironment
import java.security.MessageDigest
import java.util.zip.ZipEntry
import java.util.zip.ZipInputStream
import java.util.zip.ZipOutputStream

class RescunetClient {

    /** A problem to show to the user: its message is the service's "detail" or our own words. */
    static class RescunetException extends RuntimeException {
        int status
        RescunetException(String message, int status = 0) {
            super(message)
            this.status = status
        }
    }

    static final String TITLE = "ReSCU-Net"
    static final String DEFAULT_URL = "http://127.0.0.1:8765"
    static final String SETTINGS_CMD = "Plugins > ReSCU-Net > ReSCU-Net Settings"
    /** Set after each command: "" when it worked, else the error message (read by Batch_Propagate.ijm). */
    static final String LAST_ERROR = "rescunet.last_error"

    String url
    String token
    String env
    String model
    int readTimeoutMs = 6 * 3600 * 1000

    // ------------------------------------------------------------------ settings

    static RescunetClient fromPrefs() {
        def c = new RescunetClient()
        c.url = Prefs.get("rescunet.url", DEFAULT_URL).trim()
        c.token = Prefs.get("rescunet.token", "").trim()
        c.env = Prefs.get("rescunet.env", "").trim()
        c.model = Prefs.get("rescunet.model", "").trim()
        if (!c.url) c.url = DEFAULT_URL
        while (c.url.endsWith("/")) c.url = c.url.substring(0, c.url.length() - 1)
        return c
    }

    /** Store the settings in ImageJ's preferences (IJ_Prefs.txt) now; null leaves a value as it is. */
    static void saveSettings(String url, String token, String env, String model) {
        if (url != null) Prefs.set("rescunet.url", url.trim() ?: DEFAULT_URL)
        if (token != null) Prefs.set("rescunet.token", token.trim())
        if (env != null) Prefs.set("rescunet.env", env.trim())
        if (model != null) Prefs.set("rescunet.model", model.trim())
        Prefs.savePreferences()
    }

    // ------------------------------------------------------------------ how a command reports

    /** True when a person runs the command from the menu (not a macro, not headless, not batch mode). */
    static boolean interactive() {
        return !GraphicsEnvironment.isHeadless() && !IJ.isMacro() && !Interpreter.isBatchMode()
    }

    static void begin() {
        System.setProperty(LAST_ERROR, "")
    }

    /** The words for the user, never a stack trace. */
    static String messageOf(Throwable e) {
        if (e instanceof RescunetException) return e.message
        def root = e
        while (root.cause != null && root.cause != root) root = root.cause
        if (root instanceof UnknownHostException) return "unknown host: " + root.message
        if (root instanceof SocketTimeoutException) return "the service did not answer in time (" + root.message + ")"
        if (root instanceof IOException) return "input/output error: " + root.message
        return root.getClass().simpleName + (root.message ? ": " + root.message : "")
    }

    /**
     * Report a failed command. Interactive: an error dialog. Called from a macro or headless: the
     * message goes to the Log and the calling macro is aborted with it, unless continueMacro (the
     * macro then reads System property rescunet.last_error).
     */
    static void fail(Throwable e, boolean continueMacro = false) {
        String msg = messageOf(e)
        System.setProperty(LAST_ERROR, msg)
        IJ.showStatus("")
        IJ.showProgress(1.0)
        if (!(e instanceof RescunetException) && IJ.debugMode) {
            // an unexpected fault: the details for a bug report only in debug mode
            // (Edit > Options > Misc... > Debug mode), never in front of the user otherwise
            def sw = new StringWriter()
            e.printStackTrace(new PrintWriter(sw))
            IJ.log("ReSCU-Net: unexpected error (details for a bug report):\n" + sw)
        }
        if (interactive()) {
            IJ.error(TITLE, msg)
            return
        }
        IJ.log("ReSCU-Net error: " + msg)
        if (!continueMacro) {
            def interp = Interpreter.getInstance()
            if (interp != null) interp.abort("ReSCU-Net: " + msg)
        }
    }

    /** An error for the user, thrown by the commands themselves. */
    static RescunetException problem(String message) {
        return new RescunetException(message)
    }

    static void status(String s) {
        IJ.showStatus(s)
    }

    // ------------------------------------------------------------------ HTTP

    static class Answer {
        int status
        byte[] body
        String type
        Object json() { return new JsonSlurper().parse(body) }
        String text() { return new String(body, "UTF-8") }
    }

    boolean isLocal() {
        def host = new URL(url).host.toLowerCase()
        return host in ["127.0.0.1", "localhost", "::1", "[::1]", "0:0:0:0:0:0:0:1"]
    }

    Answer request(String method, String path, byte[] body = null, String contentType = null,
                   int connectTimeoutMs = 5000, int readMs = -1) {
        HttpURLConnection con
        try {
            con = (HttpURLConnection) new URL(url + path).openConnection()
        } catch (MalformedURLException e) {
            throw new RescunetException("The service URL '" + url + "' is not valid (" + e.message
                + "); set it in " + SETTINGS_CMD)
        }
        con.requestMethod = method
        con.connectTimeout = connectTimeoutMs
        con.readTimeout = readMs < 0 ? readTimeoutMs : readMs
        con.useCaches = false
        con.setRequestProperty("Accept", "application/json")
        if (token) con.setRequestProperty("Authorization", "Bearer " + token)
        try {
            if (body != null) {
                con.doOutput = true
                con.setRequestProperty("Content-Type", contentType)
                con.setFixedLengthStreamingMode((long) body.length)
                con.outputStream.withCloseable { it.write(body) }
            }
            def a = new Answer()
            a.status = con.responseCode
            a.type = con.contentType ?: ""
            def stream = a.status >= 400 ? con.errorStream : con.inputStream
            a.body = stream == null ? new byte[0] : stream.withCloseable { it.bytes }
            if (a.status >= 400) throw httpError(a)
            return a
        } catch (ConnectException e) {
            throw new RescunetException(notRunning())
        } catch (UnknownHostException e) {
            throw new RescunetException("Unknown host in the service URL " + url + ": " + e.message
                + ". Check the URL in " + SETTINGS_CMD + ".")
        } catch (SocketTimeoutException e) {
            throw new RescunetException("The rescunet-ij service at " + url + " did not answer in time ("
                + e.message + ").")
        } finally {
            con.disconnect()
        }
    }

    String notRunning() {
        return "No rescunet-ij service answers at " + url + ".\n" +
            (isLocal()
                ? "Start it with 'rescunet-ij serve', or set the Python environment folder in " + SETTINGS_CMD + " so that it starts by itself."
                : "Start 'rescunet-ij serve' on that machine (or an SSH tunnel to it), or correct the URL in " + SETTINGS_CMD + ".")
    }

    RescunetException httpError(Answer a) {
        String detail = null
        try {
            def j = a.json()
            if (j instanceof Map && j.detail != null) {
                detail = j.detail instanceof String ? j.detail : JsonOutput.toJson(j.detail)
            }
        } catch (Exception ignored) {
        }
        if (detail == null) detail = a.text().take(500) ?: ("HTTP status " + a.status)
        if (a.status == 401 || a.status == 403) {
            detail = "The service refused the access token (" + a.status + "): " + detail +
                "\nSet the token in " + SETTINGS_CMD + "."
        } else if (a.status == 503) {
            detail = "The service is busy: " + detail
        }
        return new RescunetException(detail, a.status)
    }

    Object getJson(String path) {
        return request("GET", path).json()
    }

    Object postJson(String path, Object body) {
        return request("POST", path, JsonOutput.toJson(body).getBytes("UTF-8"), "application/json").json()
    }

    /** parts: [[name, value]] for text fields, [[name, bytes, filename, contentType]] for files. */
    Answer postMultipart(String path, List parts) {
        String boundary = "----rescunet" + UUID.randomUUID().toString().replace("-", "")
        def out = new ByteArrayOutputStream()
        def w = { String s -> out.write(s.getBytes("UTF-8")) }
        for (p in parts) {
            w("--" + boundary + "\r\n")
            if (p.size() == 2) {
                w("Content-Disposition: form-data; name=\"" + p[0] + "\"\r\n\r\n")
                w(p[1].toString())
            } else {
                w("Content-Disposition: form-data; name=\"" + p[0] + "\"; filename=\"" + p[2] + "\"\r\n")
                w("Content-Type: " + p[3] + "\r\n\r\n")
                out.write((byte[]) p[1])
            }
            w("\r\n")
        }
        w("--" + boundary + "--\r\n")
        return request("POST", path, out.toByteArray(), "multipart/form-data; boundary=" + boundary)
    }

    // ------------------------------------------------------------------ the service process

    /** The service's health; starts a local service first when none answers and an environment is set. */
    Map ensureService() {
        try {
            return (Map) request("GET", "/v1/health", null, null, 3000, 30000).json()
        } catch (RescunetException e) {
            if (e.status != 0 || !isLocal() || !env) throw e
        }
        return startService()
    }

    List<String> serviceCommand(int port) {
        boolean win = System.getProperty("os.name", "").toLowerCase().contains("win")
        def dir = new File(env)
        if (!dir.isDirectory()) {
            throw new RescunetException("The Python environment folder " + env + " does not exist; correct it in " + SETTINGS_CMD + ".")
        }
        def exe = win ? new File(dir, "Scripts\\rescunet-ij.exe") : new File(dir, "bin/rescunet-ij")
        def args = ["serve", "--port", String.valueOf(port)]
        if (exe.isFile()) return [exe.path] + args
        def py = win ? new File(dir, "python.exe") : new File(dir, "bin/python")
        if (!py.isFile() && win) py = new File(dir, "Scripts\\python.exe")
        if (py.isFile()) return [py.path, "-m", "rescunet_ij"] + args
        throw new RescunetException("Neither " + exe + " nor " + py + " exists: is " + env +
            " the Python environment where rescunet-ij is installed? Correct it in " + SETTINGS_CMD + ".")
    }

    Map startService() {
        def u = new URL(url)
        int port = u.port > 0 ? u.port : 80
        def cmd = serviceCommand(port)
        IJ.log("ReSCU-Net: starting the service: " + cmd.join(" "))
        def pb = new ProcessBuilder(cmd)
        pb.redirectErrorStream(true)
        def proc = pb.start()
        def tail = Collections.synchronizedList(new ArrayList<String>())
        Thread.start("rescunet-ij service log") {
            proc.inputStream.withReader("UTF-8") { r ->
                String line
                while ((line = r.readLine()) != null) {
                    IJ.log("[rescunet-ij serve] " + line)
                    tail.add(line)
                    if (tail.size() > 20) tail.remove(0)
                }
            }
        }
        // end it with Fiji; kept for later commands of this Fiji session
        System.getProperties().put("rescunet.process", proc)
        Runtime.runtime.addShutdownHook(new Thread({ proc.destroy() } as Runnable))
        long deadline = System.currentTimeMillis() + 90000
        while (System.currentTimeMillis() < deadline) {
            IJ.showStatus("Starting the rescunet-ij service...")
            if (!proc.isAlive()) {
                Thread.sleep(200)
                throw new RescunetException("The rescunet-ij service stopped while starting (exit code " +
                    proc.exitValue() + "):\n" + tail.join("\n"))
            }
            try {
                def h = (Map) request("GET", "/v1/health", null, null, 1000, 5000).json()
                IJ.showStatus("rescunet-ij service started")
                return h
            } catch (RescunetException e) {
                if (e.status != 0) throw e
            }
            Thread.sleep(500)
        }
        proc.destroy()
        throw new RescunetException("The rescunet-ij service did not start within 90 s:\n" + tail.join("\n"))
    }

    // ------------------------------------------------------------------ models

    // Hashing a 125 MB model takes ~0.3 s: done once per file version (path, size, time).
    private static final Map<String, String> MODEL_IDS = Collections.synchronizedMap([:])

    static String modelId(File f) {
        String key = f.canonicalPath + "|" + f.length() + "|" + f.lastModified()
        String known = MODEL_IDS.get(key)
        if (known != null) return known
        String id = hashId(f)
        MODEL_IDS.put(key, id)
        return id
    }

    private static String hashId(File f) {
        def md = MessageDigest.getInstance("SHA-256")
        f.withInputStream { is ->
            byte[] buf = new byte[1 << 20]
            int n
            while ((n = is.read(buf)) > 0) md.update(buf, 0, n)
        }
        return md.digest().encodeHex().toString().substring(0, 16)
    }

    File modelFile(String path = null) {
        String p = path ?: model
        if (!p) {
            throw new RescunetException("No model file is set: choose a trained model (.rescunet) in " + SETTINGS_CMD + ".")
        }
        def f = new File(p)
        if (!f.isFile()) {
            throw new RescunetException("The model file " + p + " does not exist; choose another one in " + SETTINGS_CMD + ".")
        }
        return f
    }

    /** The service's id of a local model file, uploading it only when the service does not know it. */
    String ensureModel(File f) {
        String id = modelId(f)
        try {
            request("GET", "/v1/models/" + id)
            return id
        } catch (RescunetException e) {
            if (e.status != 404) throw e
        }
        IJ.showStatus("Uploading the model " + f.name + "...")
        def a = postMultipart("/v1/models/upload", [["file", f.bytes, f.name, "application/octet-stream"]])
        return a.json().id
    }

    // ------------------------------------------------------------------ images

    /** The series of planes the outlines live on: frames (axis t) or, for a z-stack with one time point, planes. */
    static Map series(ImagePlus imp) {
        int[] d = imp.getDimensions()  // w, h, C, Z, T
        def s = [channels: d[2], slices: d[3], frames: d[4], c: imp.getC(), z: imp.getZ(), t: imp.getT()]
        if (d[4] > 1) {
            s.axis = "t"; s.n = d[4]; s.current = imp.getT()
        } else if (d[3] > 1) {
            s.axis = "z"; s.n = d[3]; s.current = imp.getZ()
        } else {
            throw new RescunetException("The image '" + imp.title + "' has a single frame: ReSCU-Net needs a time-lapse (or a z-stack).")
        }
        return s
    }

    /** TIFF bytes of the planes lo..hi of the series (one channel, one plane or time point). */
    static byte[] tiff(ImagePlus imp, Map s, int lo, int hi) {
        ImagePlus cut = s.axis == "t"
            ? new Duplicator().run(imp, s.c, s.c, s.z, s.z, lo, hi)
            : new Duplicator().run(imp, s.c, s.c, lo, hi, s.t, s.t)
        return new FileSaver(cut).serialize()
    }

    /** [c, z, t] of a ROI in imp (0 = not set). */
    static int[] position(Roi roi, ImagePlus imp) {
        if (roi.hasHyperStackPosition()) return [roi.getCPosition(), roi.getZPosition(), roi.getTPosition()] as int[]
        int p = roi.getPosition()
        if (p <= 0) return [0, 0, 0] as int[]
        if (imp.getNChannels() == 1 && imp.getNSlices() == 1) return [0, 0, p] as int[]
        if (imp.getNChannels() == 1 && imp.getNFrames() == 1) return [0, p, 0] as int[]
        if (p > imp.getStackSize()) return [0, 0, 0] as int[]
        return imp.convertIndexToPosition(p)
    }

    /** The frame (plane along z) of the series a ROI is on, 0 if none. */
    static int seriesIndex(Roi roi, ImagePlus imp, Map s) {
        int[] pos = position(roi, imp)
        return s.axis == "t" ? pos[2] : pos[1]
    }

    static boolean isArea(Roi roi) {
        return roi.isArea() && !(roi instanceof ShapeRoi) && roi.type != Roi.COMPOSITE
    }

    /** Area ROIs on the plane series s (or with no position) within frames lo..hi: those sent. */
    static boolean sendable(Roi roi, ImagePlus imp, Map s, int lo, int hi) {
        if (!isArea(roi)) return false
        int[] pos = position(roi, imp)
        if (pos[0] != 0 && pos[0] != s.c) return false
        if (s.axis == "t") {
            if (pos[1] != 0 && pos[1] != s.z) return false
            return pos[2] == 0 || (pos[2] >= lo && pos[2] <= hi)
        }
        if (pos[2] != 0 && pos[2] != s.t) return false
        return pos[1] == 0 || (pos[1] >= lo && pos[1] <= hi)
    }

    /** A RoiSet.zip in memory; entries [label, roi]. */
    static byte[] zip(List entries) {
        def bytes = new ByteArrayOutputStream()
        def zos = new ZipOutputStream(bytes)
        def out = new DataOutputStream(new BufferedOutputStream(zos))
        def enc = new RoiEncoder(out)
        def used = new HashSet<String>()
        int i = 0
        for (e in entries) {
            i++
            String label = (e[0] ?: String.format("%04d", i)).toString()
            if (label.toLowerCase().endsWith(".roi")) label = label.substring(0, label.length() - 4)
            String name = label
            int k = 1
            while (!used.add(name)) name = label + "-" + (k++)
            zos.putNextEntry(new ZipEntry(name + ".roi"))
            enc.write((Roi) e[1])
            out.flush()
        }
        out.close()
        return bytes.toByteArray()
    }

    /** The ROIs of a RoiSet.zip (or a single .roi) as [label, roi] pairs, in order. */
    static List unzip(byte[] data) {
        def result = []
        if (data.length >= 4 && new String(data, 0, 4, "ISO-8859-1") == "Iout") {
            result << ["roi", new RoiDecoder(data, "roi.roi").getRoi()]
            return result
        }
        new ZipInputStream(new ByteArrayInputStream(data)).withCloseable { zis ->
            ZipEntry entry
            while ((entry = zis.nextEntry) != null) {
                if (!entry.name.toLowerCase().endsWith(".roi")) continue
                byte[] b = readEntry(zis)
                def roi = new RoiDecoder(b, entry.name).getRoi()
                if (roi == null) continue
                String label = new File(entry.name).name
                result << [label.substring(0, label.length() - 4), roi]
            }
        }
        return result
    }

    /** The bytes of the current zip entry (InputStream.getBytes() would close the zip stream). */
    static byte[] readEntry(InputStream is) {
        def out = new ByteArrayOutputStream()
        byte[] buf = new byte[65536]
        int n
        while ((n = is.read(buf)) > 0) out.write(buf, 0, n)
        return out.toByteArray()
    }

    /** The object id a returned ROI carries (property object_id, else its group), 0 if none. */
    static int objectId(Roi roi) {
        def p = roi.getProperty("object_id")
        if (p) {
            try { return Integer.parseInt(p.trim()) } catch (NumberFormatException ignored) { }
        }
        return roi.group
    }

    static final int[] PALETTE = [0xff0000, 0x00c000, 0x0080ff, 0xffa000, 0xff00ff, 0x00e0e0, 0xffff00,
                                  0x8000ff, 0xff6080, 0x80ff00, 0x0000ff, 0xa05000] as int[]

    /** One colour per object: the group colour where Fiji has its Glasbey LUT, set explicitly here. */
    static Color colour(int id) {
        return id <= 0 ? Color.yellow : new Color(PALETTE[(id - 1) % PALETTE.length])
    }

    // ------------------------------------------------------------------ where ROIs come from and go to

    /**
     * The ROIs of the command as [label, roi] entries from: a RoiSet.zip file (rois_in), else the
     * ROI Manager (a display), else the image's Overlay (headless).
     */
    static Map roiSource(ImagePlus imp, File roisIn) {
        if (roisIn != null && roisIn.path) {
            if (!roisIn.isFile()) throw new RescunetException("The RoiSet file " + roisIn + " does not exist.")
            return [kind: "file", entries: unzip(roisIn.bytes), file: roisIn]
        }
        if (!GraphicsEnvironment.isHeadless()) {
            def rm = RoiManager.getInstance()
            if (rm == null && Interpreter.isBatchMode()) rm = Interpreter.getBatchModeRoiManager()
            if (rm != null && rm.getCount() > 0) {
                def entries = []
                Roi[] rois = rm.getRoisAsArray()
                for (int i = 0; i < rois.length; i++) entries << [rm.getName(i), rois[i]]
                return [kind: "manager", entries: entries, manager: rm]
            }
        }
        def ov = imp.getOverlay()
        if (ov != null && ov.size() > 0) {
            def entries = []
            for (int i = 0; i < ov.size(); i++) entries << [ov.get(i).name, ov.get(i)]
            return [kind: "overlay", entries: entries]
        }
        if (GraphicsEnvironment.isHeadless()) return [kind: "overlay", entries: []]
        return [kind: "manager", entries: [], manager: RoiManager.getRoiManager()]
    }

    /**
     * Replace the sent ROIs by the returned ones: into the file roisOut if given, else where they
     * came from (ROI Manager with "Associate with slices" and "Show All", or the Overlay).
     * Returns the full resulting list of [label, roi].
     */
    static List putBack(ImagePlus imp, Map source, List sent, List returned, File roisOut) {
        def keep = source.entries.findAll { e -> !sent.any { it.is(e) } }
        for (e in returned) {
            int id = objectId((Roi) e[1])
            if (id > 0) ((Roi) e[1]).setStrokeColor(colour(id))
        }
        def all = keep + returned
        if (roisOut != null && roisOut.path) {
            roisOut.absoluteFile.parentFile?.mkdirs()
            roisOut.bytes = zip(all)
            return all
        }
        if (source.kind == "file") {
            // results of a RoiSet file with no rois_out: shown where a person sees them
            source = GraphicsEnvironment.isHeadless() ? [kind: "overlay"] : [kind: "manager", manager: RoiManager.getRoiManager()]
            if (source.kind == "manager") {
                keep = []
                Roi[] rois = source.manager.getRoisAsArray()
                for (int i = 0; i < rois.length; i++) keep << [source.manager.getName(i), rois[i]]
                all = keep + returned
            }
        }
        if (source.kind == "overlay") {
            def ov = new Overlay()
            for (e in all) ov.add((Roi) e[1])
            imp.setOverlay(ov)
            return all
        }
        RoiManager rm = source.manager ?: RoiManager.getRoiManager()
        def tmp = File.createTempFile("rescunet-rois-", ".zip")
        try {
            tmp.bytes = zip(all)
            rm.reset()
            rm.runCommand("Open", tmp.path)
        } finally {
            tmp.delete()
        }
        // RoiDecoder gives a ROI with a group its group colour (Fiji's Glasbey LUT): set ours again
        Roi[] now = rm.getRoisAsArray()
        for (int i = keep.size(); i < now.length; i++) {
            int id = objectId(now[i])
            if (id > 0) now[i].setStrokeColor(colour(id))
        }
        rm.runCommand("Associate", "true")
        rm.deselect()
        if (imp.getRoi() != null && all.any { it[1].is(imp.getRoi()) }) imp.deleteRoi()
        if (imp.getWindow() != null) {
            WindowManager.setTempCurrentImage(imp)
            rm.runCommand("Show All")
            WindowManager.setTempCurrentImage(null)
        }
        return all
    }

    // ------------------------------------------------------------------ outputs for batch use

    /** A 16-bit label movie of the series: each object's ROI filled with its id on its frame. */
    static ImagePlus labels(ImagePlus imp, Map s, List entries) {
        def stack = new ImageStack(imp.width, imp.height)
        def procs = []
        for (int i = 0; i < s.n; i++) {
            def ip = new ShortProcessor(imp.width, imp.height)
            procs << ip
            stack.addSlice("", ip)
        }
        for (e in entries) {
            Roi roi = (Roi) e[1]
            int id = objectId(roi)
            if (id <= 0 || !isArea(roi)) continue
            int[] pos = position(roi, imp)
            if (pos[0] != 0 && pos[0] != s.c) continue
            if (s.axis == "t" && pos[1] != 0 && pos[1] != s.z) continue
            if (s.axis == "z" && pos[2] != 0 && pos[2] != s.t) continue
            int k = s.axis == "t" ? pos[2] : pos[1]
            if (k < 1 || k > s.n) continue
            ShortProcessor ip = procs[k - 1]
            ip.setValue(id)
            ip.fill(roi)
        }
        def out = new ImagePlus(imp.shortTitle + "_labels", stack)
        if (s.axis == "t") out.setDimensions(1, 1, s.n) else out.setDimensions(1, s.n, 1)
        out.setCalibration(imp.getCalibration())
        return out
    }

    static String csvField(Object v) {
        if (v == null) return ""
        String s = v.toString()
        if (s.contains(",") || s.contains("\"") || s.contains("\n")) s = "\"" + s.replace("\"", "\"\"") + "\""
        return s
    }

    /** frame,object_id,status,confidence,prompt_iou,reason,doubtful for every predicted object. */
    static String report(Map answer) {
        def why = [:]
        for (d in answer.doubtful ?: []) why[d.frame + ":" + d.object_id] = d.why
        def sb = new StringBuilder("frame,object_id,status,confidence,prompt_iou,reason,doubtful\n")
        for (fr in answer.frames ?: []) {
            for (ob in fr.objects ?: []) {
                sb.append([fr.frame, ob.object_id, ob.status, ob.confidence, ob.prompt_iou, ob.reason,
                           why[fr.frame + ":" + ob.object_id]].collect { csvField(it) }.join(",")).append("\n")
            }
        }
        return sb.toString()
    }

    // ------------------------------------------------------------------ propagation (Propagate, Apply)

    /**
     * Send the ROIs of frames lo..hi of the series with params to path (/v1/propagate or /v1/apply)
     * and put the answer's RoiSet in their place. Changes nothing when the request fails.
     */
    Map runPropagation(String path, ImagePlus imp, Map s, int lo, int hi, Map params, Map source, File roisOut) {
        def sent = source.entries.findAll { sendable((Roi) it[1], imp, s, lo, hi) }
        if (sent.isEmpty()) {
            throw new RescunetException("No outlines to start from: draw the objects on " +
                (s.axis == "t" ? "frame " : "plane ") + params.seedFrame + " (channel " + s.c +
                (s.axis == "t" ? ", slice " + s.z : ", frame " + s.t) + ") and add them to the " +
                (source.kind == "overlay" ? "image's Overlay" : source.kind == "file" ? "RoiSet file" : "ROI Manager") + " first.")
        }
        params.remove("seedFrame")
        params.image = [channels: s.channels, slices: s.slices, frames: s.frames]
        params.channel = s.c
        params.z = s.axis == "t" ? s.z : 1
        params.first_index = lo
        if (s.axis == "z") { params.axis = "z"; params.t = s.t; params.remove("z") }
        params.return_roiset = true
        IJ.showStatus("ReSCU-Net: sending " + (hi - lo + 1) + " frames...")
        byte[] movie = tiff(imp, s, lo, hi)
        byte[] rois = zip(sent)
        IJ.showStatus("ReSCU-Net: predicting...")
        def a = postMultipart(path, [
            ["movie", movie, "movie.tif", "image/tiff"],
            ["rois", rois, "RoiSet.zip", "application/zip"],
            ["params", JsonOutput.toJson(params)]])
        Map answer = (Map) a.json()
        if (!answer.roiset) throw new RescunetException("The service returned no RoiSet: is it an older version without 'image' support?")
        def returned = unzip(answer.roiset.decodeBase64())
        answer.all = putBack(imp, source, sent, returned, roisOut)
        answer.sentCount = sent.size()
        answer.returnedCount = returned.size()
        return answer
    }

    static List trainingParamNames() {
        return ["epochs", "input_size", "subimage_size", "learning_rate", "batch_size", "concatenation_level",
                "base_filters", "erosion_width", "validation_fraction", "early_stopping_patience"]
    }

    /** Training parameters from a command's bindings; 0 for subimage_size means automatic (left out). */
    static Map trainingParams(Map values) {
        def p = [:]
        for (n in trainingParamNames()) {
            def v = values[n]
            if (v == null) continue
            if (n == "subimage_size" && ((Number) v).intValue() <= 0) continue
            p[n] = v
        }
        return p
    }
}
