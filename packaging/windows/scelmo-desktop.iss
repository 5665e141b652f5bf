; Inno Setup 6 script: a per-user installer (no admin rights needed on hospital workstations) for the
; PyInstaller one-folder build. Build on Windows after 'pyinstaller packaging\scelmo-desktop.spec':
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" packaging\windows\scelmo-desktop.iss
; Output: dist\scELMo-Desktop-<version>-setup.exe. /CURRENTUSER or /ALLUSERS on the command line choose the install mode
; (commandline: silent installs by IT, and the wine test, which needs /ALLUSERS: per-user installs fail under wine 8).
#define AppVersion "0.1.0"

[Setup]
AppId={{6C7B0E52-3F0B-4E7A-9D5E-5C1E2B7A9F31}
AppName=scELMo Desktop
AppVersion={#AppVersion}
AppPublisher=scELMo Desktop team
DefaultDirName={autopf}\scELMo Desktop
DefaultGroupName=scELMo Desktop
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
Compression=lzma2/max
SolidCompression=yes
DiskSpanning=no
OutputDir=..\..\dist
OutputBaseFilename=scELMo-Desktop-{#AppVersion}-setup
UninstallDisplayIcon={app}\scelmo-desktop.exe
WizardStyle=modern

[Files]
Source: "..\..\dist\scelmo-desktop\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\scELMo Desktop"; Filename: "{app}\scelmo-desktop.exe"
Name: "{group}\scELMo Desktop (demo data)"; Filename: "{app}\scelmo-desktop.exe"; Parameters: "--demo"
Name: "{autodesktop}\scELMo Desktop"; Filename: "{app}\scelmo-desktop.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Run]
; prove the installation works offline before the user relies on it (loads both models, runs the demo)
Filename: "{app}\scelmo-desktop.exe"; Parameters: "--selftest"; StatusMsg: "Checking the installation (offline)…"; Flags: runhidden waituntilterminated
Filename: "{app}\scelmo-desktop.exe"; Parameters: "--demo"; Description: "Open scELMo Desktop with the demo data"; Flags: postinstall nowait skipifsilent
