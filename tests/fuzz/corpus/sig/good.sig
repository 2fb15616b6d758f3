{"format":"molt-sig-1","alg":"ed25519","keyid":"002c2bac1529e3fc","sig":"YXQqPXd7yQVsWJgAN20y9h614tCC9uk3syPymvN8tMIEnLAP0wy2p2aFmt1GxW6Vfk7RrgSwITDAS0OyPqsmAQ=="}
