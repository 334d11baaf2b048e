// Batch_Propagate.ijm - ReSCU-Net: propagate the seed outlines of every movie in a folder.
//
// Headless (Fiji's launcher; the rescunet-ij service must be configured, see below):
//   ImageJ --headless -batch /path/to/Fiji.app/macros/ReSCU-Net/Batch_Propagate.ijm "dir=/data/movies"
//   (the launcher is ImageJ-linux64, ImageJ-win64.exe or Contents/MacOS/ImageJ-macosx in Fiji.app)
// From Fiji: Plugins > Macros > Run... (asks for the folder), or
//   runMacro("/path/to/Fiji.app/macros/ReSCU-Net/Batch_Propagate.ijm", "dir=[/data/movies]");
//
// Arguments (key=value, values with spaces in [brackets]):
//   dir          the folder of movies (*.tif, *.tiff)                                 (required)
//   out          where the results go (default: dir)
//   first_frame  the frame holding the seed outlines (default 1)
//   last_frame   the last frame to predict (default 0 = the end of each movie)
//
// The seeds of a movie NAME.tif are NAME_seeds.zip if it exists, else NAME.zip (an ImageJ
// RoiSet: one outline per object on the seed frame, e.g. saved from the ROI Manager). Movies
// without either are skipped; files ending in _labels.tif are our own results and skipped too.
// For each movie it writes, into out:
//   NAME_RoiSet.zip    the seeds and all predicted outlines (ImageJ positions, group = object)
//   NAME_labels.tif    a 16-bit label movie (pixel value = object id)
//   NAME_report.csv    per frame and object: status, confidence, prompt IoU, reason, doubtful
//   NAME_doubtful.csv  the rows of the report that are doubtful (check these frames)
// A movie that fails is reported and the macro goes on with the next one; a summary ends the Log.
//
// It calls the command Plugins > ReSCU-Net > Propagate Outlines, so the service URL, token and
// model are those of Plugins > ReSCU-Net > ReSCU-Net Settings (IJ_Prefs.txt). To set them from a
// headless batch run, run the settings command first, e.g. in a macro:
//   run("ReSCU-Net Settings", "url=http://127.0.0.1:8765 env=[] model=[/data/cells.rescunet] check=false");

args = getArgument();
dir = call("ij.Macro.getValue", args, "dir", "");
if (dir == "" && !is("Batch Mode") && getInfo("macro.filepath") != "")
    dir = getDirectory("Choose the folder of movies");
if (dir == "")
    exit("Batch_Propagate.ijm needs dir=<folder of movies> (got: '" + args + "')");
out = call("ij.Macro.getValue", args, "out", dir);
first = parseInt(call("ij.Macro.getValue", args, "first_frame", "1"));
last = parseInt(call("ij.Macro.getValue", args, "last_frame", "0"));
dir = fixDir(dir);
out = fixDir(out);
if (!File.isDirectory(dir)) exit("not a folder: " + dir);
if (!File.isDirectory(out)) File.makeDirectory(out);

setBatchMode(true);
files = getFileList(dir);
Array.sort(files);
done = 0; failed = 0; skipped = 0;
failures = "";
print("ReSCU-Net batch propagation of " + dir + " -> " + out);
for (i = 0; i < files.length; i++) {
    f = files[i];
    lower = toLowerCase(f);
    if (!(endsWith(lower, ".tif") || endsWith(lower, ".tiff"))) continue;
    if (endsWith(lower, "_labels.tif")) continue;
    name = substring(f, 0, lastIndexOf(f, "."));
    seeds = dir + name + "_seeds.zip";
    if (!File.exists(seeds)) seeds = dir + name + ".zip";
    if (!File.exists(seeds)) {
        print("  " + f + ": skipped (no " + name + "_seeds.zip or " + name + ".zip)");
        skipped++;
        continue;
    }
    rois = out + name + "_RoiSet.zip";
    labels = out + name + "_labels.tif";
    report = out + name + "_report.csv";
    doubtfulCsv = out + name + "_doubtful.csv";
    t0 = getTime();
    open(dir + f);
    call("java.lang.System.setProperty", "rescunet.last_error", "");
    run("Propagate Outlines", "first_frame=" + first + " last_frame=" + last +
        " direction=forward next_frame_only=false rois_in=[" + seeds + "] rois_out=[" + rois +
        "] labels_out=[" + labels + "] report_out=[" + report + "] continue_on_error=true");
    err = call("java.lang.System.getProperty", "rescunet.last_error");
    if (err == "" && !File.exists(rois)) err = "no result written";
    close("*");
    if (err != "") {
        print("  " + f + ": FAILED: " + err);
        failures = failures + "\n    " + f + ": " + err;
        failed++;
        continue;
    }
    nDoubtful = writeDoubtful(report, doubtfulCsv);
    print("  " + f + ": done in " + d2s((getTime() - t0) / 1000, 1) + " s, " + nDoubtful + " doubtful");
    done++;
}
setBatchMode(false);
summary = "ReSCU-Net batch: " + done + " done, " + failed + " failed, " + skipped + " skipped";
print(summary + failures);
return "done=" + done + " failed=" + failed + " skipped=" + skipped;

function fixDir(d) {
    d = replace(d, "\\\\", "/");
    if (!endsWith(d, "/")) d = d + "/";
    return d;
}

// Copy the header and the doubtful rows (last column not empty) of the report; their count.
function writeDoubtful(report, path) {
    lines = split(File.openAsString(report), "\n");
    text = lines[0] + "\n";
    n = 0;
    for (k = 1; k < lines.length; k++) {
        if (lines[k] == "" || endsWith(lines[k], ",")) continue;
        text = text + lines[k] + "\n";
        n++;
    }
    File.saveString(text, path);
    return n;
}
