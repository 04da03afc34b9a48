"""Image automation's pure parts: what an image name means, which tags a scan keeps, which tag a policy
chooses. No network and no cluster here (the registry scan is `moor.source.oci.tags`, the reconcilers
are `moor.controller.imagerepository` and `moor.controller.imagepolicy`)."""
